package server_test

import (
	"errors"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/hearth-chat/hearth/node/store"
	"github.com/hearth-chat/hearth/node/testnode"
)

// TestOwnMessageRestoredAfterCrash: a message of a federated channel is durable in the
// federation store before the node writes its own copy, without an fsync of its own; if a
// crash keeps that copy from the disk, the node restores it from federation at start, with
// its local author and its ID, as the other nodes show it all along.
func TestOwnMessageRestoredAfterCrash(t *testing.T) {
	a := testnode.Start(t, federated("alpha"))
	alice := a.Register(t, "alice")
	var g guild
	alice.Must("POST", "/guilds", map[string]string{"name": "Durable"}, &g)
	fedInvite(t, alice, g.text(t))
	var sent, kept message
	alice.Must("POST", "/channels/"+g.text(t)+"/messages", map[string]string{"content": "lost in the crash"}, &sent)
	alice.Must("POST", "/channels/"+g.text(t)+"/messages", map[string]string{"content": "kept by the node"}, &kept)
	a.Stop(t)

	// The crash: the node's own copy of the first message never reached the disk.
	db, err := store.Open(filepath.Join(a.DataDir, "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ch, _ := strconv.ParseUint(g.text(t), 10, 64)
	id, _ := strconv.ParseUint(sent.ID, 10, 64)
	err = db.Update(func(tx *store.Tx) error {
		var eventID string
		if err := tx.Get(store.Key(store.PrefixFedMessageRev, id), &eventID); err != nil {
			return err
		}
		return errors.Join(tx.Delete(store.Key(store.PrefixMessage, ch, id)), tx.Delete(store.Key(store.PrefixFedMessageRev, id)),
			tx.Delete(store.KeyString(store.PrefixFedMessage, eventID)))
	})
	if err := errors.Join(err, db.Close()); err != nil {
		t.Fatal(err)
	}

	opts := federated("alpha")
	opts.DataDir = a.DataDir
	a2 := testnode.Start(t, opts)
	var hist []struct {
		message
		Author struct{ ID, Username string }
	}
	a2.Client(t, alice.Token).Must("GET", "/channels/"+g.text(t)+"/messages", nil, &hist)
	if len(hist) != 2 || hist[1].ID != sent.ID || hist[1].Content != sent.Content || hist[1].Author.Username != "alice" ||
		hist[1].Author.ID != alice.UserID || hist[0].ID != kept.ID {
		t.Fatalf("history after the restart = %+v, want %q by alice (%s) as %s, then %q", hist, sent.Content, alice.UserID, sent.ID, kept.Content)
	}
}
