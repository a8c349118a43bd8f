package perm

import "testing"

func TestCompute(t *testing.T) {
	const guild, owner, mod, alice = 100, 1, 200, 2
	roles := map[uint64]Role{
		guild: {ID: guild, Permissions: DefaultEveryone},
		mod:   {ID: mod, Permissions: ManageMessages | KickMembers},
		300:   {ID: 300, Permissions: Administrator},
	}
	tests := []struct {
		name       string
		member     Member
		overwrites []Overwrite
		want       Bits
		wantNot    Bits
	}{
		{"owner has all", Member{UserID: owner}, []Overwrite{{ID: guild, Deny: ViewChannel}}, All, 0},
		{"admin role has all", Member{UserID: alice, Roles: []uint64{300}}, []Overwrite{{ID: guild, Deny: ViewChannel}}, All, 0},
		{"everyone default", Member{UserID: alice}, nil, SendMessages | ViewChannel, ManageMessages},
		{"role adds", Member{UserID: alice, Roles: []uint64{mod}}, nil, ManageMessages | SendMessages, 0},
		{"everyone overwrite denies send", Member{UserID: alice}, []Overwrite{{ID: guild, Type: OverwriteRole, Deny: SendMessages}}, ViewChannel, SendMessages},
		{"role overwrite re-allows", Member{UserID: alice, Roles: []uint64{mod}},
			[]Overwrite{{ID: guild, Type: OverwriteRole, Deny: SendMessages}, {ID: mod, Type: OverwriteRole, Allow: SendMessages}}, SendMessages, 0},
		{"member overwrite beats role", Member{UserID: alice, Roles: []uint64{mod}},
			[]Overwrite{{ID: mod, Type: OverwriteRole, Allow: SendMessages}, {ID: alice, Type: OverwriteMember, Deny: SendMessages}}, ViewChannel, SendMessages},
		{"no view means nothing", Member{UserID: alice}, []Overwrite{{ID: guild, Type: OverwriteRole, Deny: ViewChannel}}, 0, SendMessages | ViewChannel},
		{"private channel allowed for member", Member{UserID: alice},
			[]Overwrite{{ID: guild, Type: OverwriteRole, Deny: ViewChannel}, {ID: alice, Type: OverwriteMember, Allow: ViewChannel}}, ViewChannel | SendMessages, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := InChannel(Base(guild, owner, roles, tt.member), guild, tt.member, tt.overwrites)
			if !got.Has(tt.want) {
				t.Errorf("got %b, missing %b", got, tt.want&^got)
			}
			if got&tt.wantNot != 0 {
				t.Errorf("got %b, unexpected %b", got, got&tt.wantNot)
			}
		})
	}
}
