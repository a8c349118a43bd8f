package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/hearth-chat/hearth/node/chat"
	"github.com/hearth-chat/hearth/node/search"
)

// Searcher runs a search confined to readable channels (node/search's Index).
type Searcher interface {
	Search(ctx context.Context, q search.Query, readable []uint64) (search.Result, error)
}

// searchRoutes serves Discord's message search for a guild and for a private channel.
func (a *API) searchRoutes() {
	if a.opts.Search == nil {
		return
	}
	a.route("GET", "/guilds/{guild}/messages/search", true, func(r *req) (int, any, error) {
		return a.search(r, r.path.guild, 0)
	})
	a.route("GET", "/channels/{channel}/messages/search", true, func(r *req) (int, any, error) {
		ch, err := a.chat.Channel(r.actor, r.path.channel)
		if err != nil {
			return 0, nil, err
		}
		return a.search(r, ch.GuildID, r.path.channel)
	})
}

func (a *API) search(r *req, guildID, channelID chat.ID) (int, any, error) {
	q, err := search.FromParams(r.URL.Query())
	if err != nil {
		return 0, nil, searchError(err)
	}
	q.GuildID = uint64(guildID)
	q, err = q.Resolve(r.Context(), a.chat)
	if err != nil {
		return 0, nil, searchError(err)
	}
	readable, err := a.chat.ReadableChannels(r.actor, guildID)
	if err != nil {
		return 0, nil, err
	}
	if channelID != 0 {
		readable = keep(readable, uint64(channelID))
	}
	res, err := a.opts.Search.Search(r.Context(), q, readable)
	if err != nil {
		return 0, nil, searchError(err)
	}
	hits := make([][2]uint64, len(res.Hits))
	for i, h := range res.Hits {
		hits[i] = [2]uint64{h.ChannelID, h.ID}
	}
	msgs, err := a.chat.MessagesByID(r.actor, hits)
	if err != nil {
		return 0, nil, err
	}
	// Discord's shape: each result is an array whose one element is the hit.
	out := make([][]chat.MessageOut, len(msgs))
	for i, m := range msgs {
		out[i] = []chat.MessageOut{m}
	}
	body := map[string]any{"total_results": res.Total, "messages": out}
	if res.Partial {
		body["partial"] = true
	}
	return http.StatusOK, body, nil
}

func keep(ids []uint64, id uint64) []uint64 {
	for _, v := range ids {
		if v == id {
			return []uint64{id}
		}
	}
	return []uint64{}
}

// searchError maps search's typed errors to Discord's form error (spec/search.md §6).
func searchError(err error) error {
	var qe *search.QueryError
	if errors.As(err, &qe) {
		field := qe.Field
		if field == "" {
			field = "content"
		}
		return &chat.Error{Status: http.StatusBadRequest, Code: 50035, Message: "Invalid Form Body",
			Fields: map[string][2]string{field: {"SEARCH_" + strings.ToUpper(string(qe.Code)), qe.Msg}}}
	}
	return err
}
