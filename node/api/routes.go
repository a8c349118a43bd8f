package api

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/hearth-chat/hearth/node/chat"
	"github.com/hearth-chat/hearth/node/media"
	"github.com/hearth-chat/hearth/node/model"
)

// Path parameters named guild, channel, message, user, member, ban, role and target are
// parsed before a handler runs (pathParams) and reach it in r.path.

const ok = http.StatusOK

// noContent answers 204 unless err is set.
func noContent(err error) (int, any, error) { return http.StatusNoContent, nil, err }

func (a *API) routes() {
	c := a.chat

	// Authentication.
	a.route("POST", "/auth/register", false, withBody(func(r *req, body struct{ Username, Password string }) (int, any, error) {
		token, uid, err := c.Register(r.Context(), body.Username, body.Password)
		return http.StatusCreated, map[string]any{"token": token, "user_id": uid}, err
	}))
	a.route("POST", "/auth/login", false, withBody(func(r *req, body struct{ Login, Password string }) (int, any, error) {
		token, uid, err := c.Login(r.Context(), body.Login, body.Password, clientAddr(r.Request))
		return ok, map[string]any{"token": token, "user_id": uid}, err
	}))
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
	a.route("PATCH", "/users/@me", true, withBody(func(r *req, p chat.UserPatch) (int, any, error) {
		if err := a.storeImage(r, "avatar", p.Avatar.Val); err != nil {
			return 0, nil, err
		}
		u, err := c.UpdateMe(r.Context(), r.actor, p)
		return ok, u, err
	}))
	a.route("GET", "/users/{user}", true, func(r *req) (int, any, error) {
		u, err := c.VisibleUser(r.actor, r.path.user)
		return ok, u, err
	})
	a.route("GET", "/users/@me/guilds", true, func(r *req) (int, any, error) { return ok, c.MyGuilds(r.actor), nil })
	a.route("DELETE", "/users/@me/guilds/{guild}", true, func(r *req) (int, any, error) {
		return noContent(c.LeaveGuild(r.Context(), r.actor, r.path.guild))
	})
	a.route("GET", "/users/@me/channels", true, func(r *req) (int, any, error) { return ok, c.PrivateChannels(r.actor), nil })
	a.route("POST", "/users/@me/channels", true, withBody(func(r *req, body chat.OpenDMRequest) (int, any, error) {
		ch, err := c.OpenDM(r.Context(), r.actor, body)
		return ok, ch, err
	}))

	// Guilds.
	a.route("POST", "/guilds", true, withBody(func(r *req, body struct{ Name string }) (int, any, error) {
		g, err := c.CreateGuild(r.Context(), r.actor, body.Name)
		return http.StatusCreated, g, err
	}))
	a.route("GET", "/guilds/{guild}", true, func(r *req) (int, any, error) {
		g, err := c.Guild(r.actor, r.path.guild)
		return ok, g, err
	})
	a.route("PATCH", "/guilds/{guild}", true, withBody(func(r *req, p chat.GuildPatch) (int, any, error) {
		if err := a.storeImage(r, "icon", p.Icon.Val); err != nil {
			return 0, nil, err
		}
		g, err := c.ModifyGuild(r.Context(), r.actor, r.path.guild, p)
		return ok, g, err
	}))
	a.route("DELETE", "/guilds/{guild}", true, func(r *req) (int, any, error) {
		return noContent(c.DeleteGuild(r.Context(), r.actor, r.path.guild))
	})
	a.route("GET", "/guilds/{guild}/channels", true, func(r *req) (int, any, error) {
		chs, err := c.Channels(r.actor, r.path.guild)
		return ok, chs, err
	})
	a.route("POST", "/guilds/{guild}/channels", true, withBody(func(r *req, spec chat.ChannelSpec) (int, any, error) {
		ch, err := c.CreateChannel(r.Context(), r.actor, r.path.guild, spec)
		return http.StatusCreated, ch, err
	}))
	a.route("PATCH", "/guilds/{guild}/channels", true, withBody(func(r *req, moves []chat.ChannelPosition) (int, any, error) {
		return noContent(c.ReorderChannels(r.Context(), r.actor, r.path.guild, moves))
	}))

	// Roles.
	a.route("GET", "/guilds/{guild}/roles", true, func(r *req) (int, any, error) {
		roles, err := c.Roles(r.actor, r.path.guild)
		return ok, roles, err
	})
	a.route("POST", "/guilds/{guild}/roles", true, withBody(func(r *req, spec chat.RoleSpec) (int, any, error) {
		role, err := c.CreateRole(r.Context(), r.actor, r.path.guild, spec)
		return ok, role, err
	}))
	a.route("PATCH", "/guilds/{guild}/roles", true, withBody(func(r *req, moves []chat.RolePosition) (int, any, error) {
		roles, err := c.ReorderRoles(r.Context(), r.actor, r.path.guild, moves)
		return ok, roles, err
	}))
	a.route("PATCH", "/guilds/{guild}/roles/{role}", true, withBody(func(r *req, spec chat.RoleSpec) (int, any, error) {
		role, err := c.ModifyRole(r.Context(), r.actor, r.path.guild, r.path.role, spec)
		return ok, role, err
	}))
	a.route("DELETE", "/guilds/{guild}/roles/{role}", true, func(r *req) (int, any, error) {
		return noContent(c.DeleteRole(r.Context(), r.actor, r.path.guild, r.path.role))
	})

	// Members and bans.
	a.route("GET", "/guilds/{guild}/members", true, func(r *req) (int, any, error) {
		limit, err := r.queryInt("limit", 1)
		if err != nil {
			return 0, nil, err
		}
		after, err := r.queryID("after")
		if err != nil {
			return 0, nil, err
		}
		ms, err := c.Members(r.actor, r.path.guild, limit, after)
		return ok, ms, err
	})
	a.route("GET", "/guilds/{guild}/members/{member}", true, func(r *req) (int, any, error) {
		m, err := c.Member(r.actor, r.path.guild, r.path.user)
		return ok, m, err
	})
	a.route("PATCH", "/guilds/{guild}/members/{member}", true, withBody(func(r *req, p chat.MemberPatch) (int, any, error) {
		m, err := c.ModifyMember(r.Context(), r.actor, r.path.guild, r.path.user, p)
		return ok, m, err
	}))
	a.route("DELETE", "/guilds/{guild}/members/{member}", true, func(r *req) (int, any, error) {
		return noContent(c.Kick(r.Context(), r.actor, r.path.guild, r.path.user))
	})
	memberRole := func(add bool) handler {
		return func(r *req) (int, any, error) {
			return noContent(c.SetMemberRole(r.Context(), r.actor, r.path.guild, r.path.user, r.path.role, add))
		}
	}
	a.route("PUT", "/guilds/{guild}/members/{member}/roles/{role}", true, memberRole(true))
	a.route("DELETE", "/guilds/{guild}/members/{member}/roles/{role}", true, memberRole(false))
	a.route("GET", "/guilds/{guild}/bans", true, func(r *req) (int, any, error) {
		bans, err := c.Bans(r.actor, r.path.guild)
		return ok, bans, err
	})
	type banBody struct {
		DeleteMessageSeconds int     `json:"delete_message_seconds"`
		Reason               *string `json:"reason"`
	}
	a.route("PUT", "/guilds/{guild}/bans/{user}", true, withBody(func(r *req, body banBody) (int, any, error) {
		reason := body.Reason
		if h := r.Header.Get("X-Audit-Log-Reason"); reason == nil && h != "" {
			reason = &h
		}
		return noContent(c.Ban(r.Context(), r.actor, r.path.guild, r.path.user, reason, body.DeleteMessageSeconds))
	}))
	a.route("DELETE", "/guilds/{guild}/bans/{ban}", true, func(r *req) (int, any, error) {
		return noContent(c.Unban(r.Context(), r.actor, r.path.guild, r.path.user))
	})

	// Invites.
	a.route("POST", "/channels/{channel}/invites", true, withBody(func(r *req, spec chat.InviteSpec) (int, any, error) {
		inv, err := c.CreateInvite(r.Context(), r.actor, r.path.channel, spec)
		return ok, inv, err
	}))
	a.route("GET", "/channels/{channel}/invites", true, func(r *req) (int, any, error) {
		invs, err := c.Invites(r.actor, 0, r.path.channel)
		return ok, invs, err
	})
	a.route("GET", "/guilds/{guild}/invites", true, func(r *req) (int, any, error) {
		invs, err := c.Invites(r.actor, r.path.guild, 0)
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
	a.route("GET", "/channels/{channel}", true, func(r *req) (int, any, error) {
		ch, err := c.Channel(r.actor, r.path.channel)
		return ok, ch, err
	})
	a.route("PATCH", "/channels/{channel}", true, withBody(func(r *req, spec chat.ChannelSpec) (int, any, error) {
		ch, err := c.ModifyChannel(r.Context(), r.actor, r.path.channel, spec)
		return ok, ch, err
	}))
	a.route("DELETE", "/channels/{channel}", true, func(r *req) (int, any, error) {
		ch, err := c.DeleteChannel(r.Context(), r.actor, r.path.channel)
		return ok, ch, err
	})
	a.route("PUT", "/channels/{channel}/permissions/{target}", true, withBody(func(r *req, ow model.Overwrite) (int, any, error) {
		ow.ID = r.path.target
		return noContent(c.PutOverwrite(r.Context(), r.actor, r.path.channel, ow))
	}))
	a.route("DELETE", "/channels/{channel}/permissions/{target}", true, func(r *req) (int, any, error) {
		return noContent(c.DeleteOverwrite(r.Context(), r.actor, r.path.channel, r.path.target))
	})
	a.route("POST", "/channels/{channel}/typing", true, func(r *req) (int, any, error) {
		return noContent(c.Typing(r.Context(), r.actor, r.path.channel))
	})
}

func (a *API) messageRoutes() {
	c := a.chat
	a.route("GET", "/channels/{channel}/messages", true, func(r *req) (int, any, error) {
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
		msgs, err := c.Messages(r.actor, r.path.channel, q)
		return ok, msgs, err
	})
	a.route("GET", "/channels/{channel}/messages/{message}", true, func(r *req) (int, any, error) {
		m, err := c.Message(r.actor, r.path.channel, r.path.message)
		return ok, m, err
	})
	a.route("POST", "/channels/{channel}/messages", true, func(r *req) (int, any, error) {
		id := r.path.channel
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
	type editBody struct {
		Content *string `json:"content"`
	}
	a.route("PATCH", "/channels/{channel}/messages/{message}", true, withBody(func(r *req, body editBody) (int, any, error) {
		m, err := c.EditMessage(r.Context(), r.actor, r.path.channel, r.path.message, body.Content)
		return ok, m, err
	}))
	a.route("DELETE", "/channels/{channel}/messages/{message}", true, func(r *req) (int, any, error) {
		return noContent(c.DeleteMessage(r.Context(), r.actor, r.path.channel, r.path.message))
	})
	type bulkBody struct {
		Messages []chat.ID `json:"messages"`
	}
	a.route("POST", "/channels/{channel}/messages/bulk-delete", true, withBody(func(r *req, body bulkBody) (int, any, error) {
		return noContent(c.BulkDelete(r.Context(), r.actor, r.path.channel, body.Messages))
	}))
	a.route("POST", "/channels/{channel}/messages/{message}/ack", true, func(r *req) (int, any, error) {
		return ok, map[string]any{"token": nil}, c.Ack(r.Context(), r.actor, r.path.channel, r.path.message)
	})
	a.route("GET", "/channels/{channel}/pins", true, func(r *req) (int, any, error) {
		msgs, err := c.Pins(r.actor, r.path.channel)
		return ok, msgs, err
	})
	pin := func(pinned bool) handler {
		return func(r *req) (int, any, error) {
			return noContent(c.SetPin(r.Context(), r.actor, r.path.channel, r.path.message, pinned))
		}
	}
	a.route("PUT", "/channels/{channel}/pins/{message}", true, pin(true))
	a.route("DELETE", "/channels/{channel}/pins/{message}", true, pin(false))

	// react adds or removes a reaction: the caller's own (self), else {user}'s.
	react := func(add, self bool) handler {
		return func(r *req) (int, any, error) {
			emoji, err := chat.ParseEmoji(r.PathValue("emoji"))
			if err != nil {
				return 0, nil, err
			}
			user := r.path.user
			if self {
				user = r.actor
			}
			return noContent(c.React(r.Context(), r.actor, r.path.channel, r.path.message, emoji, user, add))
		}
	}
	a.route("PUT", "/channels/{channel}/messages/{message}/reactions/{emoji}/@me", true, react(true, true))
	a.route("DELETE", "/channels/{channel}/messages/{message}/reactions/{emoji}/@me", true, react(false, true))
	a.route("DELETE", "/channels/{channel}/messages/{message}/reactions/{emoji}/{user}", true, react(false, false))
	a.route("GET", "/channels/{channel}/messages/{message}/reactions/{emoji}", true, func(r *req) (int, any, error) {
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
		users, err := c.Reactors(r.actor, r.path.channel, r.path.message, emoji, limit, after)
		return ok, users, err
	})
	a.route("DELETE", "/channels/{channel}/messages/{message}/reactions", true, func(r *req) (int, any, error) {
		return noContent(c.ClearReactions(r.Context(), r.actor, r.path.channel, r.path.message))
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
