package chat

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/hearth-chat/hearth/node/auth"
	"github.com/hearth-chat/hearth/node/model"
	"github.com/hearth-chat/hearth/node/store"
)

var usernameRE = regexp.MustCompile(`^[a-z0-9_.]{2,32}$`)

// Register creates an account and returns a session token.
func (s *Service) Register(ctx context.Context, username, password string) (string, ID, error) {
	username = strings.ToLower(strings.TrimSpace(username))
	if !usernameRE.MatchString(username) {
		return "", 0, invalid("username", "USERNAME_INVALID", "Username must be 2-32 characters of a-z, 0-9, _ and .")
	}
	if n := utf8.RuneCountInString(password); n < 8 || n > 256 {
		return "", 0, invalid("password", "PASSWORD_LENGTH", "Password must be 8-256 characters.")
	}
	s.mu.RLock()
	_, taken := s.usernames[username]
	s.mu.RUnlock()
	if taken {
		return "", 0, invalid("username", "USERNAME_ALREADY_TAKEN", "Username is unavailable. Try adding numbers, letters, underscores _, or periods.")
	}
	hash, err := auth.HashPassword(password, s.pw)
	if err != nil {
		return "", 0, err
	}
	token, err := auth.NewToken()
	if err != nil {
		return "", 0, err
	}
	th := auth.TokenHash(token)
	s.lock()
	defer s.mu.Unlock()
	if _, taken := s.usernames[username]; taken {
		return "", 0, invalid("username", "USERNAME_ALREADY_TAKEN", "Username is unavailable. Try adding numbers, letters, underscores _, or periods.")
	}
	u := &model.User{ID: s.ids.Next(), Username: username, Discriminator: "0"}
	err = s.db.Update(func(tx *store.Tx) error {
		return errors.Join(
			tx.Put(store.Key(store.PrefixUser, uint64(u.ID)), u),
			tx.Put(store.KeyString(store.PrefixUsername, username), u.ID),
			tx.Put(store.Key(store.PrefixCredential, uint64(u.ID)), hash),
			tx.Put(store.KeyString(store.PrefixToken, string(th[:])), u.ID),
		)
	})
	if err != nil {
		return "", 0, fmt.Errorf("chat: register: %w", err)
	}
	s.users[u.ID] = u
	s.usernames[username] = u.ID
	s.tokens[th] = u.ID
	s.log.Info("account registered", "user", username, "id", u.ID)
	return token, u.ID, nil
}

// Login checks a password and returns a new session token. Failures are limited per
// username and per client address.
func (s *Service) Login(ctx context.Context, login, password, addr string) (string, ID, error) {
	login = strings.ToLower(strings.TrimSpace(login))
	for _, key := range []string{"u:" + login, "a:" + addr} {
		if ok, wait := s.login.Allow(key); !ok {
			return "", 0, RateLimited(wait)
		}
	}
	fail := func() (string, ID, error) {
		s.login.Fail("u:" + login)
		s.login.Fail("a:" + addr)
		return "", 0, invalid("login", "INVALID_LOGIN", "Login or password is invalid.")
	}
	s.mu.RLock()
	uid, ok := s.usernames[login]
	s.mu.RUnlock()
	var hash string
	if ok {
		err := s.db.View(func(tx *store.Tx) error { return tx.Get(store.Key(store.PrefixCredential, uint64(uid)), &hash) })
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return "", 0, fmt.Errorf("chat: login: %w", err)
		}
	}
	if hash == "" {
		// Spend the same time as a real check so timing does not reveal which usernames exist.
		_, _ = auth.HashPassword(password, s.pw)
		return fail()
	}
	match, err := auth.CheckPassword(hash, password)
	if err != nil {
		return "", 0, fmt.Errorf("chat: login: %w", err)
	}
	if !match {
		return fail()
	}
	s.login.Succeed("u:" + login)
	token, err := auth.NewToken()
	if err != nil {
		return "", 0, err
	}
	th := auth.TokenHash(token)
	if err := s.db.Update(func(tx *store.Tx) error {
		return tx.Put(store.KeyString(store.PrefixToken, string(th[:])), uid)
	}); err != nil {
		return "", 0, fmt.Errorf("chat: login: %w", err)
	}
	s.lock()
	s.tokens[th] = uid
	s.mu.Unlock()
	return token, uid, nil
}

// Logout revokes a token.
func (s *Service) Logout(ctx context.Context, token string) error {
	th := auth.TokenHash(token)
	if err := s.db.Update(func(tx *store.Tx) error {
		return tx.Delete(store.KeyString(store.PrefixToken, string(th[:])))
	}); err != nil {
		return fmt.Errorf("chat: logout: %w", err)
	}
	s.lock()
	delete(s.tokens, th)
	s.mu.Unlock()
	return nil
}

// Authenticate returns the user a token belongs to.
func (s *Service) Authenticate(token string) (ID, error) {
	if token == "" {
		return 0, ErrUnauthorized
	}
	th := auth.TokenHash(token)
	s.mu.RLock()
	defer s.mu.RUnlock()
	uid, ok := s.tokens[th]
	if !ok {
		return 0, ErrUnauthorized
	}
	return uid, nil
}

// Me returns the actor's user.
func (s *Service) Me(actor ID) model.User {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.user(actor)
}

// UserPatch is the body of PATCH /users/@me. Nil fields are unchanged. Avatar is the hex
// hash of an image blob the API layer stored from the data URI the client sent; null
// removes the avatar.
type UserPatch struct {
	GlobalName *string          `json:"global_name"`
	Avatar     Optional[string] `json:"avatar"`
}

// UpdateMe changes the actor's profile and dispatches USER_UPDATE to the actor's sessions.
func (s *Service) UpdateMe(ctx context.Context, actor ID, p UserPatch) (model.User, error) {
	if p.GlobalName != nil && utf8.RuneCountInString(*p.GlobalName) > 32 {
		return model.User{}, invalid("global_name", "BASE_TYPE_MAX_LENGTH", "Must be 32 or fewer in length.")
	}
	s.lock()
	defer s.mu.Unlock()
	u := *s.users[actor]
	if p.GlobalName != nil {
		u.GlobalName = p.GlobalName
		if *p.GlobalName == "" {
			u.GlobalName = nil
		}
	}
	old := s.users[actor].Avatar
	if p.Avatar.Set {
		u.Avatar = p.Avatar.Val
	}
	if err := s.db.Update(func(tx *store.Tx) error {
		return errors.Join(tx.Put(store.Key(store.PrefixUser, uint64(u.ID)), &u), moveImageRef(tx, imageUser, u.ID, old, u.Avatar))
	}); err != nil {
		return model.User{}, fmt.Errorf("chat: update user: %w", err)
	}
	s.users[actor] = &u
	s.publishUsers([]ID{actor}, "USER_UPDATE", 0, u)
	if p.GlobalName != nil || p.Avatar.Set {
		// The guilds' other members see the new name and avatar, as on Discord, here and on
		// the other nodes of federated guilds.
		for gid := range s.userGuilds[actor] {
			gs := s.guilds[gid]
			if m := gs.members[actor]; m != nil {
				out := s.memberOut(m, true)
				out.GuildID = &gid
				s.publishGuild(gid, "GUILD_MEMBER_UPDATE", IntentGuildMembers, out)
			}
			s.federateProfile(gs, actor, actor, false)
		}
	}
	return u, nil
}

// VisibleUser returns a user the actor shares a guild or private channel with.
func (s *Service) VisibleUser(actor, id ID) (model.User, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u := s.users[id]
	if u == nil || !s.sharesSomething(actor, id) {
		return model.User{}, ErrUnknownUser
	}
	return *u, nil
}

// sharesSomething reports whether two users share a guild or a private channel. Callers
// hold s.mu.
func (s *Service) sharesSomething(a, b ID) bool {
	if a == b {
		return true
	}
	for g := range s.userGuilds[a] {
		if _, ok := s.guilds[g].members[b]; ok {
			return true
		}
	}
	for c := range s.private[a] {
		if _, ok := s.private[b][c]; ok {
			return true
		}
	}
	return false
}

// MyGuilds lists the actor's guilds with their guild-level permissions.
func (s *Service) MyGuilds(actor ID) []PartialGuild {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []PartialGuild{}
	for gid := range s.userGuilds[actor] {
		gs := s.guilds[gid]
		out = append(out, PartialGuild{ID: gid, Name: gs.g.Name, Icon: gs.g.Icon, Owner: gs.g.OwnerID == actor,
			Permissions: gs.basePerms(gs.members[actor]), Features: []string{}})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// UserGuilds returns the IDs of the actor's guilds.
func (s *Service) UserGuilds(actor ID) []uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]uint64, 0, len(s.userGuilds[actor]))
	for g := range s.userGuilds[actor] {
		out = append(out, uint64(g))
	}
	return out
}

func sortBy[T any](s []T, less func(a, b T) bool) {
	slices.SortFunc(s, func(a, b T) int {
		switch {
		case less(a, b):
			return -1
		case less(b, a):
			return 1
		}
		return 0
	})
}
