package media

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/hearth-chat/hearth/conformance/harness"
)

// collectionGrace is the garbage-collection grace of the node of
// media/quota-and-collection.
const collectionGrace = 4 * time.Second

// gcArgs make a node collect every 250 ms (a pass may take half of that) with the grace above (README's
// configuration table).
var gcArgs = []string{"--media-gc-interval", "250ms", "--media-gc-grace", collectionGrace.String()}

// collectionArgs add a 64 KiB quota and rate limits the test stays under.
var collectionArgs = append([]string{"--media-quota", "65536", "--rate-messages", "1000", "--rate-global", "1000"}, gcArgs...)

// MEDIA-016: per-owner quota accounting, a blob charged once however often it is
// uploaded again, and 413 for an upload past the quota. MEDIA-060: a blob no message
// references is eventually deleted and its charge released. MEDIA-032: a correctly
// signed URL of a blob the node no longer has answers 404. MEDIA-061: nothing
// uploaded within the grace period is deleted.
//
// Timing is judged only from below: a blob whose upload began at s is young until
// s + grace at the earliest, so an answer received before then must be 200. Small
// blobs uploaded and unreferenced one per poll while the big one waits for
// collection are the witnesses: those unreferenced before the big one's grace ended
// were there when the collection that deleted it ran, and must have survived it.
func quotaAndCollection(t *T) {
	u, g := setup(t)
	big := randomFile(40 << 10)
	sentBig := time.Now()
	idA, att := uploadMessage(t, u, g.Text, big)
	idB, _ := uploadMessage(t, u, g.Text, big) // the same blob again: charged once
	if r := postFiles(t, u, g.Text, randomFile(40<<10)); r.Status != 413 {
		t.Fatalf("a second distinct 40 KiB file under a 64 KiB quota (the first uploaded twice): expected 413, got %s", r)
	}
	bigURL := str(att[0]["url"])
	remove := func(id string) { t.Must(u.Client, 204, "DELETE", "/channels/"+g.Text+"/messages/"+id, nil, nil) }
	remove(idA)
	remove(idB)

	type witness struct {
		url           string
		sent, removed time.Time
	}
	var witnesses []witness
	t.Eventually("the unreferenced blob is deleted (its signed URL answers 404)", func() error {
		sent := time.Now()
		id, att := uploadMessage(t, u, g.Text, randomFile(64))
		remove(id)
		witnesses = append(witnesses, witness{str(att[0]["url"]), sent, time.Now()})
		r := get(t, "GET", bigURL)
		switch {
		case r.Status == 404 && time.Since(sentBig) < collectionGrace:
			return harness.Permanent(fmt.Errorf("deleted %v after its upload began, within the %v grace", time.Since(sentBig), collectionGrace))
		case r.Status == 404:
			return nil
		case r.Status == 200:
			return fmt.Errorf("still served %v after its upload began", time.Since(sentBig))
		}
		return harness.Permanent(fmt.Errorf("signed URL of an unreferenced blob: expected 200 or 404, got %s", r))
	})

	judged := 0
	for _, w := range witnesses {
		if !w.removed.Before(sentBig.Add(collectionGrace)) {
			break
		}
		r := get(t, "GET", w.url)
		if time.Since(w.sent) >= collectionGrace {
			continue // its own grace may have ended meanwhile
		}
		judged++
		if r.Status != 200 {
			t.Errorf("a file uploaded %v ago and unreferenced before the last collection: expected 200 (within the grace), got %s",
				time.Since(w.sent).Round(time.Millisecond), r)
		}
	}
	if r := postFiles(t, u, g.Text, randomFile(40<<10)); r.Status != 200 {
		t.Errorf("a 40 KiB file once the deleted 40 KiB blob's charge is released (quota 64 KiB): expected 200, got %s", r)
	}
	if judged == 0 {
		t.Skipf("no file uploaded within the grace could be fetched before its grace ended (%d uploaded): the machine is too slow to judge MEDIA-061", len(witnesses))
	}
}

// randomFile is a file of n random bytes.
func randomFile(n int) file {
	data := make([]byte, n)
	_, _ = rand.Read(data)
	return file{"q.bin", "application/octet-stream", data}
}
