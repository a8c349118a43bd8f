package server_test

import (
	"testing"
)

func TestDirectMessages(t *testing.T) {
	n, alice, bob, _, ag, bg := setup(t)
	stranger := n.Register(t, "stranger")
	var dm struct {
		ID         string `json:"id"`
		Type       int    `json:"type"`
		Recipients []struct{ ID string }
	}
	alice.Must("POST", "/users/@me/channels", map[string]string{"recipient_id": bob.UserID}, &dm)
	if dm.Type != 1 || len(dm.Recipients) != 2 {
		t.Fatalf("DM channel = %+v", dm)
	}
	var again struct{ ID string }
	alice.Must("POST", "/users/@me/channels", map[string]string{"recipient_id": bob.UserID}, &again)
	if again.ID != dm.ID {
		t.Fatalf("second DM open returned %s, want %s", again.ID, dm.ID)
	}
	if st := alice.Do("POST", "/users/@me/channels", map[string]string{"recipient_id": stranger.UserID}, nil); st != 404 {
		t.Fatalf("DM with a user sharing nothing: %d, want 404", st)
	}
	bg.Wait("CHANNEL_CREATE")
	alice.Must("POST", "/channels/"+dm.ID+"/messages", map[string]string{"content": "psst <@" + bob.UserID + ">"}, nil)
	var m message
	bg.Wait("MESSAGE_CREATE").Decode(t, &m)
	if m.Content != "psst <@"+bob.UserID+">" || len(m.Mentions) != 1 {
		t.Fatalf("DM message = %+v", m)
	}
	ag.Wait("MESSAGE_CREATE")
	if st := stranger.Do("GET", "/channels/"+dm.ID+"/messages", nil, nil); st != 404 {
		t.Fatalf("outsider reading a DM: %d", st)
	}
	var mine []struct{ ID string }
	bob.Must("GET", "/users/@me/channels", nil, &mine)
	if len(mine) != 1 || mine[0].ID != dm.ID {
		t.Fatalf("bob's private channels = %+v", mine)
	}

	// A group DM with the three of them (carol shares the guild).
	carol := n.Register(t, "carol")
	var inv struct{ Code string }
	var g guild
	var guilds []struct{ ID string }
	alice.Must("GET", "/users/@me/guilds", nil, &guilds)
	alice.Must("GET", "/guilds/"+guilds[0].ID+"/channels", nil, &g.Channels)
	alice.Must("POST", "/channels/"+g.text(t)+"/invites", map[string]any{}, &inv)
	carol.Must("POST", "/invites/"+inv.Code, nil, nil)
	var group struct {
		ID   string `json:"id"`
		Type int    `json:"type"`
	}
	alice.Must("POST", "/users/@me/channels", map[string]any{"recipients": []string{bob.UserID, carol.UserID}}, &group)
	if group.Type != 3 {
		t.Fatalf("group DM type %d", group.Type)
	}
	cg := carol.Connect(-1)
	bob.Must("POST", "/channels/"+group.ID+"/messages", map[string]string{"content": "hi all"}, nil)
	cg.Wait("MESSAGE_CREATE")
	// Carol leaves; she can no longer read it.
	carol.Must("DELETE", "/channels/"+group.ID, nil, nil)
	if st := carol.Do("GET", "/channels/"+group.ID+"/messages", nil, nil); st != 404 {
		t.Fatalf("after leaving the group: %d", st)
	}
}

func TestRolesAndChannelOrder(t *testing.T) {
	n, alice, bob, g, _, bg := setup(t)
	var low, high struct {
		ID       string `json:"id"`
		Position int    `json:"position"`
	}
	// As on Discord, a new role goes just above @everyone, so the first created ends up higher.
	alice.Must("POST", "/guilds/"+g.ID+"/roles", map[string]any{"name": "high"}, &high)
	alice.Must("POST", "/guilds/"+g.ID+"/roles", map[string]any{"name": "low", "permissions": "268435456"}, &low) // MANAGE_ROLES
	bg.Wait("GUILD_ROLE_CREATE")
	alice.Must("PUT", "/guilds/"+g.ID+"/members/"+bob.UserID+"/roles/"+low.ID, nil, nil)
	bg.Wait("GUILD_MEMBER_UPDATE")
	// Bob (low) may not assign or edit the role above his own.
	if st := bob.Do("PUT", "/guilds/"+g.ID+"/members/"+bob.UserID+"/roles/"+high.ID, nil, nil); st != 403 {
		t.Fatalf("assigning a higher role: %d, want 403", st)
	}
	if st := bob.Do("PATCH", "/guilds/"+g.ID+"/roles/"+high.ID, map[string]string{"name": "mine"}, nil); st != 403 {
		t.Fatalf("editing a higher role: %d, want 403", st)
	}
	// Nor grant permissions he lacks.
	if st := bob.Do("POST", "/guilds/"+g.ID+"/roles", map[string]any{"permissions": "8"}, nil); st != 403 {
		t.Fatalf("creating an ADMINISTRATOR role without it: %d, want 403", st)
	}
	var roles []struct {
		ID       string `json:"id"`
		Position int    `json:"position"`
	}
	alice.Must("GET", "/guilds/"+g.ID+"/roles", nil, &roles)
	if len(roles) != 3 || roles[0].ID != g.ID {
		t.Fatalf("roles = %+v", roles)
	}

	var a, b struct{ ID string }
	alice.Must("POST", "/guilds/"+g.ID+"/channels", map[string]any{"name": "Alpha Channel"}, &a)
	alice.Must("POST", "/guilds/"+g.ID+"/channels", map[string]any{"name": "beta"}, &b)
	var ch struct{ Name string }
	alice.Must("GET", "/channels/"+a.ID, nil, &ch)
	if ch.Name != "alpha-channel" {
		t.Fatalf("text channel name %q, want alpha-channel", ch.Name)
	}
	alice.Must("PATCH", "/guilds/"+g.ID+"/channels", []map[string]any{{"id": a.ID, "position": 9}, {"id": b.ID, "position": 8}}, nil)
	var chans []struct {
		ID       string `json:"id"`
		Position int    `json:"position"`
	}
	bob.Must("GET", "/guilds/"+g.ID+"/channels", nil, &chans)
	pos := map[string]int{}
	for _, c := range chans {
		pos[c.ID] = c.Position
	}
	if pos[a.ID] != 9 || pos[b.ID] != 8 {
		t.Fatalf("positions after reorder: %v", pos)
	}
	if st := bob.Do("POST", "/guilds/"+g.ID+"/channels", map[string]any{"name": "nope"}, nil); st != 403 {
		t.Fatalf("bob creating a channel: %d", st)
	}
	_ = n
}
