// Package capi holds the conformance tests of spec/client-api.md (prefix CAPI):
// REST routes, error shapes, permissions, messages, the gateway and long
// polling. Every test quotes the rule it checks, and gets fresh users and a
// fresh guild so that tests never share state.
package capi

import (
	"slices"
	"strconv"

	"github.com/hearth-chat/hearth/conformance/harness"
)

// Tests are the client API tests, in a stable order.
var Tests = slices.Concat(general, auth, users, guilds, perms, members, invites, messages, gateway, longpoll)

type (
	// T is the test context.
	T = harness.T
	// Obj is a decoded JSON object.
	Obj = harness.Obj
	// Test is one conformance test.
	Test = harness.Test
)

var (
	str = harness.Str
	num = harness.Num
	get = harness.Get
)

// Permission bits (spec/client-api.md §2.4).
const (
	permCreateInvite   = 1 << 0
	permKick           = 1 << 1
	permBan            = 1 << 2
	permAdmin          = 1 << 3
	permManageChannels = 1 << 4
	permManageGuild    = 1 << 5
	permAddReactions   = 1 << 6
	permView           = 1 << 10
	permSend           = 1 << 11
	permManageMessages = 1 << 13
	permEmbedLinks     = 1 << 14
	permAttachFiles    = 1 << 15
	permReadHistory    = 1 << 16
	permMentionAll     = 1 << 17
	permConnect        = 1 << 20
	permSpeak          = 1 << 21
	permMute           = 1 << 22
	permDeafen         = 1 << 23
	permMove           = 1 << 24
	permChangeNick     = 1 << 26
	permManageNicks    = 1 << 27
	permManageRoles    = 1 << 28
)

// Intent bits (spec/client-api.md §3.1).
const (
	intentGuilds         = 1 << 0
	intentMembers        = 1 << 1
	intentPresences      = 1 << 8
	intentMessages       = 1 << 9
	intentReactions      = 1 << 10
	intentTyping         = 1 << 11
	intentMessageContent = 1 << 15
)

// thumbsUp is 👍 URL-encoded for reaction routes.
const thumbsUp = "%F0%9F%91%8D"

// itoa renders a permission bitfield as the decimal string the API uses.
func itoa(p int64) string { return strconv.FormatInt(p, 10) }
