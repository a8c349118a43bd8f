package server

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hearth-chat/hearth/federation/event"
	"github.com/hearth-chat/hearth/federation/fed"
	"github.com/hearth-chat/hearth/node/chat"
	"golang.org/x/time/rate"
)

// Direct conversations with users of other nodes: finding the user a DM is opened with
// (name@node, [CAPI-033]) and deciding which conversations a local user takes
// (spec/federation.md §6.1).

// Conversations from strangers one node may open with this node's users: a burst, then one
// per strangerEvery [FED-091].
const (
	strangerBurst = 10
	strangerEvery = 6 * time.Minute
)

// dmPolicy decides which conversations opened on other nodes local users take.
type dmPolicy struct {
	// strangers accepts conversations from users who share no guild with the recipient
	// (config DMFromStrangers) [FED-090].
	strangers bool
	mu        sync.Mutex
	limits    map[event.Node]*rate.Limiter // per requesting node; reset when it grows large
}

// allowStranger reports whether node may open one more conversation from a stranger.
func (p *dmPolicy) allowStranger(node event.Node) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.limits == nil || len(p.limits) >= 4096 {
		p.limits = map[event.Node]*rate.Limiter{}
	}
	l := p.limits[node]
	if l == nil {
		l = rate.NewLimiter(rate.Every(strangerEvery), strangerBurst)
		p.limits[node] = l
	}
	return l.Allow()
}

// admitDM decides whether the local user to takes a conversation that from opens: yes when
// the two are members of a guild (a conversation included); from a stranger only when the
// node accepts strangers, within the node's allowance, and then ErrUnknownUser when there
// is no user to [FED-063] [FED-090] [FED-091]. A refusal does not tell whether to exists.
func (f *federation) admitDM(from event.User, to string) error {
	if f.sharesGuild(from, to) {
		return nil
	}
	switch {
	case !f.dms.strangers:
		return fmt.Errorf("%w: this node takes direct messages only from users who share a guild with the recipient", fed.ErrRefused)
	case !f.dms.allowStranger(from.Node):
		return fmt.Errorf("%w: too many direct conversations from node %s; try later", fed.ErrBusy, from.Node)
	case !f.chat.HasUser(to):
		return fed.ErrUnknownUser
	}
	return nil
}

// sharesGuild reports whether the remote user from and the local user to are current
// members of one guild.
func (f *federation) sharesGuild(from event.User, to string) bool {
	local := event.User{Node: f.svc.Node(), Name: to}
	for _, id := range f.svc.Guilds() {
		if g, ok := f.svc.Guild(id); ok && g.IsMember(from) && g.IsMember(local) {
			return true
		}
	}
	return false
}

// dmRecipient finds the remote user to (name@node) a local user opens a DM with: a user of
// the guilds this node federates shown under that name, else user name of the node that
// node names (a node name, peer ID or multiaddr, fed.ResolveNode).
func (f *federation) dmRecipient(to string) (event.User, error) {
	for _, g := range f.svc.Guilds() {
		if found, err := f.fedUser(g, to); err == nil && found.Node != f.svc.Node() {
			return found, nil
		}
	}
	name, ref, _ := strings.Cut(to, "@")
	if !event.ValidName(name) {
		return event.User{}, chat.ErrUnknownUser
	}
	node, err := f.svc.ResolveNode(ref)
	switch {
	case errors.Is(err, fed.ErrUnknownNode):
		return event.User{}, &chat.UnknownNodeError{Reason: strings.TrimPrefix(err.Error(), fed.ErrUnknownNode.Error()+": ")}
	case err != nil:
		return event.User{}, err
	case node == f.svc.Node():
		return event.User{}, &chat.UnknownNodeError{Reason: fmt.Sprintf("%q is this node: give a local user's name without @", ref)}
	}
	return event.User{Node: node, Name: name}, nil
}

// existingDM returns the conversation the local user from and the remote user to are both
// members of, if any, so that opening a DM again by another name of the user (a peer ID
// instead of the node name) does not open a second one.
func (f *federation) existingDM(from string, to event.User) (event.ID, bool) {
	local := event.User{Node: f.svc.Node(), Name: from}
	for _, id := range f.svc.Guilds() {
		if g, ok := f.svc.Guild(id); ok && g.Info().DM && g.IsMember(local) && g.IsMember(to) {
			return id, true
		}
	}
	return "", false
}

// dmError turns fed.CreateDM's errors into the domain's.
func dmError(err error) error {
	switch {
	case errors.Is(err, fed.ErrUnknownUser):
		return chat.ErrUnknownUser
	case errors.Is(err, fed.ErrRefused):
		return chat.ErrDMRefused
	case errors.Is(err, fed.ErrUnreachable), errors.Is(err, fed.ErrBusy):
		return fmt.Errorf("%w (%v)", chat.ErrNodeUnreachable, err)
	}
	return err
}
