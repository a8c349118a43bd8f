package api

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/hearth-chat/hearth/node/chat"
	"github.com/hearth-chat/hearth/node/media"
	"github.com/hearth-chat/hearth/node/model"
)

// Shorthands for the unknown-resource errors of path parameters.
var (
	uGuild   = chat.ErrUnknownGuild
	uChannel = chat.ErrUnknownChannel
	uMessage = chat.ErrUnknownMessage
	uUser    = chat.ErrUnknownUser
	uRole    = chat.ErrUnknownRole
)

func (a *API) routes() {
	c := a.chat
	ok := http.StatusOK
	noContent := func(err error) (int, any, error) { return http.StatusNoContent, nil, err }

	// Authentication.
	a.route("POST", "/auth/register", false, func(r *req) (int, any, error) {
		var body struct{ Username, Password string }
		if err := r.decode(&body); err != nil {
			return 0, nil, err
		}
		token, uid, err := c.Register(r.Context(), body.Username, body.Password)
		return http.StatusCreated, map[string]any{"token": token, "user_id": uid}, err
	})
	a.route("POST", "/auth/login", false, func(r *req) (int, any, error) {
		var body struct{ Login, Password string }
		if err := r.decode(&body); err != nil {
			return 0, nil, err
		}
		token, uid, err := c.Login(r.Context(), body.Login, body.Password, clientAddr(r.Request))
		return ok, map[string]any{"token": token, "user_id": uid}, err
	})
	a.route("POST", "/auth/logout", true, func(r *req) (int, any, error) {
		return noContent(c.Logout(r.Context(), r.token))
	})

	// Gateway discovery.
	gw := func(bot bool) handler {
		return func(r *req) (int, any, error) {
			body := map[string]any{"url": a.gatewayURL(r.Request)}
			if bot {
				body["shards"] = 1
				body["session_start_limit"] = map[string]int{"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}
			}
			return ok, body, nil
		}
	}
	a.route("GET", "/gateway", false, gw(false))
	a.route("GET", "/gateway/bot", true, gw(true))

	// Users.
	a.route("GET", "/users/@me", true, func(r *req) (int, any, error) { return ok, c.Me(r.actor), nil })
	a.route("PATCH", "/users/@me", true, func(r *req) (int, any, error) {
		var p chat.UserPatch
		if err := r.decode(&p); err != nil {
			return 0, nil, err
		}
		if err := a.storeImage(r, "avatar", p.Avatar.Val); err != nil {
			return 0, nil, err
		}
		u, err := c.UpdateMe(r.Context(), r.actor, p)
		return ok, u, err
	})
	a.route("GET", "/users/{user}", true, func(r *req) (int, any, error) {
		id, err := r.id("user", uUser)
		if err != nil {
			return 0, nil, err
		}
		u, err := c.VisibleUser(r.actor, id)
		return ok, u, err
	})
	a.route("GET", "/users/@me/guilds", true, func(r *req) (int, any, error) { return ok, c.MyGuilds(r.actor), nil })
	a.route("DELETE", "/users/@me/guilds/{guild}", true, func(r *req) (int, any, error) {
		id, err := r.id("guild", uGuild)
		if err != nil {
			return 0, nil, err
		}
		return noContent(c.LeaveGuild(r.Context(), r.actor, id))
	})
	a.route("GET", "/users/@me/channels", true, func(r *req) (int, any, error) { return ok, c.PrivateChannels(r.actor), nil })
	a.route("POST", "/users/@me/channels", true, func(r *req) (int, any, error) {
		var body chat.OpenDMRequest
		if err := r.decode(&body); err != nil {
			return 0, nil, err
		}
		ch, err := c.OpenDM(r.Context(), r.actor, body)
		return ok, ch, err
	})

	// Guilds.
	a.route("POST", "/guilds", true, func(r *req) (int, any, error) {
		var body struct{ Name string }
		if err := r.decode(&body); err != nil {
			return 0, nil, err
		}
		g, err := c.CreateGuild(r.Context(), r.actor, body.Name)
		return http.StatusCreated, g, err
	})
	a.route("GET", "/guilds/{guild}", true, func(r *req) (int, any, error) {
		id, err := r.id("guild", uGuild)
		if err != nil {
			return 0, nil, err
		}
		g, err := c.Guild(r.actor, id)
		return ok, g, err
	})
	a.route("PATCH", "/guilds/{guild}", true, func(r *req) (int, any, error) {
		id, err := r.id("guild", uGuild)
		if err != nil {
			return 0, nil, err
		}
		var p chat.GuildPatch
		if err := r.decode(&p); err != nil {
			return 0, nil, err
		}
		if err := a.storeImage(r, "icon", p.Icon.Val); err != nil {
			return 0, nil, err
		}
		g, err := c.ModifyGuild(r.Context(), r.actor, id, p)
		return ok, g, err
	})
	a.route("DELETE", "/guilds/{guild}", true, func(r *req) (int, any, error) {
		id, err := r.id("guild", uGuild)
		if err != nil {
			return 0, nil, err
		}
		return noContent(c.DeleteGuild(r.Context(), r.actor, id))
	})
	a.route("GET", "/guilds/{guild}/channels", true, func(r *req) (int, any, error) {
		id, err := r.id("guild", uGuild)
		if err != nil {
			return 0, nil, err
		}
		chs, err := c.Channels(r.actor, id)
		return ok, chs, err
	})
	a.route("POST", "/guilds/{guild}/channels", true, func(r *req) (int, any, error) {
		id, err := r.id("guild", uGuild)
		if err != nil {
			return 0, nil, err
		}
		var spec chat.ChannelSpec
		if err := r.decode(&spec); err != nil {
			return 0, nil, err
		}
		ch, err := c.CreateChannel(r.Context(), r.actor, id, spec)
		return http.StatusCreated, ch, err
	})
	a.route("PATCH", "/guilds/{guild}/channels", true, func(r *req) (int, any, error) {
		id, err := r.id("guild", uGuild)
		if err != nil {
			return 0, nil, err
		}
		var moves []chat.ChannelPosition
		if err := r.decode(&moves); err != nil {
			return 0, nil, err
		}
		return noContent(c.ReorderChannels(r.Context(), r.actor, id, moves))
	})

	// Roles.
	a.route("GET", "/guilds/{guild}/roles", true, func(r *req) (int, any, error) {
		id, err := r.id("guild", uGuild)
		if err != nil {
			return 0, nil, err
		}
		roles, err := c.Roles(r.actor, id)
		return ok, roles, err
	})
	a.route("POST", "/guilds/{guild}/roles", true, func(r *req) (int, any, error) {
		id, err := r.id("guild", uGuild)
		if err != nil {
			return 0, nil, err
		}
		var spec chat.RoleSpec
		if err := r.decode(&spec); err != nil {
			return 0, nil, err
		}
		role, err := c.CreateRole(r.Context(), r.actor, id, spec)
		return ok, role, err
	})
	a.route("PATCH", "/guilds/{guild}/roles", true, func(r *req) (int, any, error) {
		id, err := r.id("guild", uGuild)
		if err != nil {
			return 0, nil, err
		}
		var moves []chat.RolePosition
		if err := r.decode(&moves); err != nil {
			return 0, nil, err
		}
		roles, err := c.ReorderRoles(r.Context(), r.actor, id, moves)
		return ok, roles, err
	})
	a.route("PATCH", "/guilds/{guild}/roles/{role}", true, func(r *req) (int, any, error) {
		ids, err := r.ids("guild", uGuild, "role", uRole)
		if err != nil {
			return 0, nil, err
		}
		var spec chat.RoleSpec
		if err := r.decode(&spec); err != nil {
			return 0, nil, err
		}
		role, err := c.ModifyRole(r.Context(), r.actor, ids[0], ids[1], spec)
		return ok, role, err
	})
	a.route("DELETE", "/guilds/{guild}/roles/{role}", true, func(r *req) (int, any, error) {
		ids, err := r.ids("guild", uGuild, "role", uRole)
		if err != nil {
			return 0, nil, err
		}
		return noContent(c.DeleteRole(r.Context(), r.actor, ids[0], ids[1]))
	})

	// Members and bans.
	a.route("GET", "/guilds/{guild}/members", true, func(r *req) (int, any, error) {
		id, err := r.id("guild", uGuild)
		if err != nil {
			return 0, nil, err
		}
		limit, err := r.queryInt("limit", 1)
		if err != nil {
			return 0, nil, err
		}
		after, err := r.queryID("after")
		if err != nil {
			return 0, nil, err
		}
		ms, err := c.Members(r.actor, id, limit, after)
		return ok, ms, err
	})
	a.route("GET", "/guilds/{guild}/members/{user}", true, func(r *req) (int, any, error) {
		ids, err := r.ids("guild", uGuild, "user", chat.ErrUnknownMember)
		if err != nil {
			return 0, nil, err
		}
		m, err := c.Member(r.actor, ids[0], ids[1])
		return ok, m, err
	})
	a.route("PATCH", "/guilds/{guild}/members/{user}", true, func(r *req) (int, any, error) {
		ids, err := r.ids("guild", uGuild, "user", chat.ErrUnknownMember)
		if err != nil {
			return 0, nil, err
		}
		var p chat.MemberPatch
		if err := r.decode(&p); err != nil {
			return 0, nil, err
		}
		m, err := c.ModifyMember(r.Context(), r.actor, ids[0], ids[1], p)
		return ok, m, err
	})
	a.route("DELETE", "/guilds/{guild}/members/{user}", true, func(r *req) (int, any, error) {
		ids, err := r.ids("guild", uGuild, "user", chat.ErrUnknownMember)
		if err != nil {
			return 0, nil, err
		}
		return noContent(c.Kick(r.Context(), r.actor, ids[0], ids[1]))
	})
	memberRole := func(add bool) handler {
		return func(r *req) (int, any, error) {
			ids, err := r.ids("guild", uGuild, "user", chat.ErrUnknownMember, "role", uRole)
			if err != nil {
				return 0, nil, err
			}
			return noContent(c.SetMemberRole(r.Context(), r.actor, ids[0], ids[1], ids[2], add))
		}
	}
	a.route("PUT", "/guilds/{guild}/members/{user}/roles/{role}", true, memberRole(true))
	a.route("DELETE", "/guilds/{guild}/members/{user}/roles/{role}", true, memberRole(false))
	a.route("GET", "/guilds/{guild}/bans", true, func(r *req) (int, any, error) {
		id, err := r.id("guild", uGuild)
		if err != nil {
			return 0, nil, err
		}
		bans, err := c.Bans(r.actor, id)
		return ok, bans, err
	})
	a.route("PUT", "/guilds/{guild}/bans/{user}", true, func(r *req) (int, any, error) {
		ids, err := r.ids("guild", uGuild, "user", uUser)
		if err != nil {
			return 0, nil, err
		}
		var body struct {
			DeleteMessageSeconds int     `json:"delete_message_seconds"`
			Reason               *string `json:"reason"`
		}
		if err := r.decode(&body); err != nil {
			return 0, nil, err
		}
		reason := body.Reason
		if h := r.Header.Get("X-Audit-Log-Reason"); reason == nil && h != "" {
			reason = &h
		}
		return noContent(c.Ban(r.Context(), r.actor, ids[0], ids[1], reason, body.DeleteMessageSeconds))
	})
	a.route("DELETE", "/guilds/{guild}/bans/{user}", true, func(r *req) (int, any, error) {
		ids, err := r.ids("guild", uGuild, "user", chat.ErrUnknownBan)
		if err != nil {
			return 0, nil, err
		}
		return noContent(c.Unban(r.Context(), r.actor, ids[0], ids[1]))
	})

	// Invites.
	a.route("POST", "/channels/{channel}/invites", true, func(r *req) (int, any, error) {
		id, err := r.id("channel", uChannel)
		if err != nil {
			return 0, nil, err
		}
		var spec chat.InviteSpec
		if err := r.decode(&spec); err != nil {
			return 0, nil, err
		}
		inv, err := c.CreateInvite(r.Context(), r.actor, id, spec)
		return ok, inv, err
	})
	a.route("GET", "/channels/{channel}/invites", true, func(r *req) (int, any, error) {
		id, err := r.id("channel", uChannel)
		if err != nil {
			return 0, nil, err
		}
		invs, err := c.Invites(r.actor, 0, id)
		return ok, invs, err
	})
	a.route("GET", "/guilds/{guild}/invites", true, func(r *req) (int, any, error) {
		id, err := r.id("guild", uGuild)
		if err != nil {
			return 0, nil, err
		}
		invs, err := c.Invites(r.actor, id, 0)
		return ok, invs, err
	})
	a.route("GET", "/invites/{code}", false, func(r *req) (int, any, error) {
		inv, err := c.Invite(r.PathValue("code"))
		return ok, inv, err
	})
	a.route("POST", "/invites/{code}", true, func(r *req) (int, any, error) {
		inv, err := c.JoinInvite(r.Context(), r.actor, r.PathValue("code"))
		return ok, inv, err
	})
	a.route("DELETE", "/invites/{code}", true, func(r *req) (int, any, error) {
		inv, err := c.DeleteInvite(r.Context(), r.actor, r.PathValue("code"))
		return ok, inv, err
	})

	a.channelRoutes()
	a.messageRoutes()
	a.searchRoutes()

	// Anything else under the API prefixes is a Discord-shaped 404.
	for _, prefix := range []string{"/api/v10/", "/api/v9/", "/api/"} {
		a.mux.HandleFunc(prefix, func(w http.ResponseWriter, r *http.Request) {
			a.writeError(w, r, errNotFound)
		})
	}
}

func (a *API) channelRoutes() {
	c := a.chat
	ok := http.StatusOK
	a.route("GET", "/channels/{channel}", true, func(r *req) (int, any, error) {
		id, err := r.id("channel", uChannel)
		if err != nil {
			return 0, nil, err
		}
		ch, err := c.Channel(r.actor, id)
		return ok, ch, err
	})
	a.route("PATCH", "/channels/{channel}", true, func(r *req) (int, any, error) {
		id, err := r.id("channel", uChannel)
		if err != nil {
			return 0, nil, err
		}
		var spec chat.ChannelSpec
		if err := r.decode(&spec); err != nil {
			return 0, nil, err
		}
		ch, err := c.ModifyChannel(r.Context(), r.actor, id, spec)
		return ok, ch, err
	})
	a.route("DELETE", "/channels/{channel}", true, func(r *req) (int, any, error) {
		id, err := r.id("channel", uChannel)
		if err != nil {
			return 0, nil, err
		}
		ch, err := c.DeleteChannel(r.Context(), r.actor, id)
		return ok, ch, err
	})
	a.route("PUT", "/channels/{channel}/permissions/{target}", true, func(r *req) (int, any, error) {
		ids, err := r.ids("channel", uChannel, "target", uRole)
		if err != nil {
			return 0, nil, err
		}
		var ow model.Overwrite
		if err := r.decode(&ow); err != nil {
			return 0, nil, err
		}
		ow.ID = ids[1]
		return http.StatusNoContent, nil, c.PutOverwrite(r.Context(), r.actor, ids[0], ow)
	})
	a.route("DELETE", "/channels/{channel}/permissions/{target}", true, func(r *req) (int, any, error) {
		ids, err := r.ids("channel", uChannel, "target", uRole)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusNoContent, nil, c.DeleteOverwrite(r.Context(), r.actor, ids[0], ids[1])
	})
	a.route("POST", "/channels/{channel}/typing", true, func(r *req) (int, any, error) {
		id, err := r.id("channel", uChannel)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusNoContent, nil, c.Typing(r.Context(), r.actor, id)
	})
}

func (a *API) messageRoutes() {
	c := a.chat
	ok := http.StatusOK
	chMsg := func(r *req) ([]chat.ID, error) { return r.ids("channel", uChannel, "message", uMessage) }
	a.route("GET", "/channels/{channel}/messages", true, func(r *req) (int, any, error) {
		id, err := r.id("channel", uChannel)
		if err != nil {
			return 0, nil, err
		}
		var q chat.HistoryQuery
		var errs [4]error
		q.Before, errs[0] = r.queryID("before")
		q.After, errs[1] = r.queryID("after")
		q.Around, errs[2] = r.queryID("around")
		q.Limit, errs[3] = r.queryInt("limit", 50)
		q.FromStart = r.URL.Query().Has("after") && q.After == 0
		for _, err := range errs {
			if err != nil {
				return 0, nil, err
			}
		}
		msgs, err := c.Messages(r.actor, id, q)
		return ok, msgs, err
	})
	a.route("GET", "/channels/{channel}/messages/{message}", true, func(r *req) (int, any, error) {
		ids, err := chMsg(r)
		if err != nil {
			return 0, nil, err
		}
		m, err := c.Message(r.actor, ids[0], ids[1])
		return ok, m, err
	})
	a.route("POST", "/channels/{channel}/messages", true, func(r *req) (int, any, error) {
		id, err := r.id("channel", uChannel)
		if err != nil {
			return 0, nil, err
		}
		if err := a.rl.allow(r.w, "msg:"+r.actor.String()+":"+id.String(), float64(a.opts.RateMessages)/2, a.opts.RateMessages, "messages:"+id.String()); err != nil {
			return 0, nil, err
		}
		var body chat.MessageCreate
		if !isMultipart(r.Request) {
			if err := r.decode(&body); err != nil {
				return 0, nil, err
			}
			m, err := c.CreateMessage(r.Context(), r.actor, id, body)
			return ok, m, err
		}
		if a.opts.Uploads == nil {
			return 0, nil, &chat.Error{Status: http.StatusBadRequest, Code: 50035, Message: "Invalid Form Body",
				Fields: map[string][2]string{"files": {"UPLOADS_DISABLED", "This node does not accept uploads."}}}
		}
		// Check access before reading any file, so a refused request costs no disk.
		if _, err := c.Channel(r.actor, id); err != nil {
			return 0, nil, err
		}
		payload, files, abandon, err := a.opts.Uploads.ParseMessageUpload(r.Request, uint64(r.actor))
		if err != nil {
			return 0, nil, err
		}
		var meta struct {
			Attachments []struct {
				ID       json.Number `json:"id"`
				Filename string      `json:"filename"`
			} `json:"attachments"`
		}
		if len(payload) > 0 {
			if err := json.Unmarshal(payload, &body); err != nil {
				abandon()
				return 0, nil, errBadJSON
			}
			_ = json.Unmarshal(payload, &meta)
		}
		for _, am := range meta.Attachments {
			if i, err := am.ID.Int64(); err == nil && i >= 0 && int(i) < len(files) && am.Filename != "" {
				files[i].Filename = media.SanitizeFilename(am.Filename)
			}
		}
		body.Files = files
		m, err := c.CreateMessage(r.Context(), r.actor, id, body)
		if err != nil {
			abandon()
		}
		return ok, m, err
	})
	a.route("PATCH", "/channels/{channel}/messages/{message}", true, func(r *req) (int, any, error) {
		ids, err := chMsg(r)
		if err != nil {
			return 0, nil, err
		}
		var body struct {
			Content *string `json:"content"`
		}
		if err := r.decode(&body); err != nil {
			return 0, nil, err
		}
		m, err := c.EditMessage(r.Context(), r.actor, ids[0], ids[1], body.Content)
		return ok, m, err
	})
	a.route("DELETE", "/channels/{channel}/messages/{message}", true, func(r *req) (int, any, error) {
		ids, err := chMsg(r)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusNoContent, nil, c.DeleteMessage(r.Context(), r.actor, ids[0], ids[1])
	})
	a.route("POST", "/channels/{channel}/messages/bulk-delete", true, func(r *req) (int, any, error) {
		id, err := r.id("channel", uChannel)
		if err != nil {
			return 0, nil, err
		}
		var body struct {
			Messages []chat.ID `json:"messages"`
		}
		if err := r.decode(&body); err != nil {
			return 0, nil, err
		}
		return http.StatusNoContent, nil, c.BulkDelete(r.Context(), r.actor, id, body.Messages)
	})
	a.route("POST", "/channels/{channel}/messages/{message}/ack", true, func(r *req) (int, any, error) {
		ids, err := chMsg(r)
		if err != nil {
			return 0, nil, err
		}
		return ok, map[string]any{"token": nil}, c.Ack(r.Context(), r.actor, ids[0], ids[1])
	})
	a.route("GET", "/channels/{channel}/pins", true, func(r *req) (int, any, error) {
		id, err := r.id("channel", uChannel)
		if err != nil {
			return 0, nil, err
		}
		msgs, err := c.Pins(r.actor, id)
		return ok, msgs, err
	})
	pin := func(pinned bool) handler {
		return func(r *req) (int, any, error) {
			ids, err := chMsg(r)
			if err != nil {
				return 0, nil, err
			}
			return http.StatusNoContent, nil, c.SetPin(r.Context(), r.actor, ids[0], ids[1], pinned)
		}
	}
	a.route("PUT", "/channels/{channel}/pins/{message}", true, pin(true))
	a.route("DELETE", "/channels/{channel}/pins/{message}", true, pin(false))

	react := func(add bool, self bool) handler {
		return func(r *req) (int, any, error) {
			ids, err := chMsg(r)
			if err != nil {
				return 0, nil, err
			}
			emoji, err := chat.ParseEmoji(r.PathValue("emoji"))
			if err != nil {
				return 0, nil, err
			}
			user := r.actor
			if !self {
				if user, err = r.id("user", uUser); err != nil {
					return 0, nil, err
				}
			}
			return http.StatusNoContent, nil, c.React(r.Context(), r.actor, ids[0], ids[1], emoji, user, add)
		}
	}
	a.route("PUT", "/channels/{channel}/messages/{message}/reactions/{emoji}/@me", true, react(true, true))
	a.route("DELETE", "/channels/{channel}/messages/{message}/reactions/{emoji}/@me", true, react(false, true))
	a.route("DELETE", "/channels/{channel}/messages/{message}/reactions/{emoji}/{user}", true, react(false, false))
	a.route("GET", "/channels/{channel}/messages/{message}/reactions/{emoji}", true, func(r *req) (int, any, error) {
		ids, err := chMsg(r)
		if err != nil {
			return 0, nil, err
		}
		emoji, err := chat.ParseEmoji(r.PathValue("emoji"))
		if err != nil {
			return 0, nil, err
		}
		limit, err := r.queryInt("limit", 25)
		if err != nil {
			return 0, nil, err
		}
		after, err := r.queryID("after")
		if err != nil {
			return 0, nil, err
		}
		users, err := c.Reactors(r.actor, ids[0], ids[1], emoji, limit, after)
		return ok, users, err
	})
	a.route("DELETE", "/channels/{channel}/messages/{message}/reactions", true, func(r *req) (int, any, error) {
		ids, err := chMsg(r)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusNoContent, nil, c.ClearReactions(r.Context(), r.actor, ids[0], ids[1])
	})
}

// gatewayURL is the WebSocket URL clients should connect to.
func (a *API) gatewayURL(r *http.Request) string {
	if a.opts.GatewayURL != nil {
		return a.opts.GatewayURL(r)
	}
	scheme := "ws"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "wss"
	}
	return scheme + "://" + r.Host + "/gateway"
}

// storeImage replaces the data URI an avatar or icon field carries with the hash of the image
// stored from it; a nil field (absent or null) is left alone.
func (a *API) storeImage(r *req, field string, uri *string) error {
	if uri == nil {
		return nil
	}
	if a.opts.Images == nil {
		return &chat.Error{Status: http.StatusBadRequest, Code: 50035, Message: "Invalid Form Body",
			Fields: map[string][2]string{field: {"IMAGE_INVALID", "This node does not store images."}}}
	}
	hash, err := a.opts.Images.StoreImage(r.Context(), *uri, uint64(r.actor))
	if err != nil {
		return err
	}
	*uri = hash
	return nil
}
