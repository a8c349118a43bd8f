package server

import (
	"context"
	"log/slog"
	"path"

	"github.com/hearth-chat/hearth/node/chat"
	"github.com/hearth-chat/hearth/node/config"
	"github.com/hearth-chat/hearth/node/content"
	"github.com/hearth-chat/hearth/node/fanout"
	"github.com/hearth-chat/hearth/node/model"
	"github.com/hearth-chat/hearth/node/search"
	"github.com/hearth-chat/hearth/node/store"
)

// searchDoc is what the index sees of a message.
func searchDoc(m *model.Message) search.Doc {
	d := search.Doc{
		ID: uint64(m.ID), GuildID: uint64(m.GuildID), ChannelID: uint64(m.ChannelID), AuthorID: uint64(m.AuthorID),
		Content: m.Content, MentionsEveryone: m.MentionEveryone, Pinned: m.Pinned,
	}
	for _, u := range m.Mentions {
		d.Mentions = append(d.Mentions, uint64(u))
	}
	if content.Parse(m.Content).HasLink {
		d.Has |= search.HasLink
	}
	for _, a := range m.Attachments {
		d.Has |= search.HasFile
		switch {
		case hasPrefix(a.ContentType, "image/"):
			d.Has |= search.HasImage
		case hasPrefix(a.ContentType, "video/"):
			d.Has |= search.HasVideo
		case hasPrefix(a.ContentType, "audio/"):
			d.Has |= search.HasSound
		}
	}
	return d
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

// indexer feeds the search index from the domain's message changes.
type indexer struct {
	ix  *search.Index
	log interface{ Warn(string, ...any) }
}

func (x indexer) MessageStored(m *model.Message) {
	if err := x.ix.Index(searchDoc(m)); err != nil {
		x.log.Warn("search: queueing message for indexing", "id", m.ID, "err", err)
	}
}

func (x indexer) MessageDeleted(_, id chat.ID) {
	if err := x.ix.Delete(uint64(id)); err != nil {
		x.log.Warn("search: queueing delete", "id", id, "err", err)
	}
}

// searchSource lets the index repair itself from the store.
type searchSource struct{ chat *chat.Service }

func (s searchSource) Count(ctx context.Context) (int, error) { return s.chat.CountMessages(ctx) }

func (s searchSource) Scan(ctx context.Context, fn func(search.Doc) error) error {
	return s.chat.ScanMessages(ctx, func(m *model.Message) error { return fn(searchDoc(m)) })
}

// Reindex rebuilds the search index of a stopped node's data directory from its stored
// messages, reporting progress, and returns how many messages it indexed.
func Reindex(ctx context.Context, cfg config.Config, log *slog.Logger, progress func(done, total int)) (int, error) {
	db, err := store.Open(path.Join(cfg.DataDir, "db"), store.Options{Logger: log})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	svc, err := chat.New(db, fanout.NewHub(), chat.Options{Logger: log})
	if err != nil {
		return 0, err
	}
	defer svc.Close()
	ix, err := search.Open(path.Join(cfg.DataDir, "search"), search.Options{Logger: log, Source: searchSource{svc}})
	if err != nil {
		return 0, err
	}
	stats, err := ix.Rebuild(ctx, searchSource{svc}, progress)
	if cerr := ix.Close(); err == nil {
		err = cerr
	}
	return stats.Checked, err
}
