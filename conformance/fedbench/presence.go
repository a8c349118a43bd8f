package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
)

// presence puts o.presenceUsers users online on three nodes (one guild, homed on node0),
// then changes o.presenceRate statuses per second for o.presenceDuration and measures, on
// an observer's gateway on every node, the time from the Presence Update (op 3) to the
// PRESENCE_UPDATE (or PRESENCE_UPDATE_BULK) for that user and status; and the libp2p bytes
// per second of every node, counted by the proxies while nothing changes and while
// statuses change.
func presence(o options) error {
	c, err := startCluster(o, 3, false)
	if err != nil {
		return err
	}
	defer c.stop()
	fg, err := newFedGuild(c.nodes[0])
	if err != nil {
		return err
	}
	setup := time.Now()
	users := make([]*user, o.presenceUsers)
	if err := parallel(len(users), 8, func(i int) error {
		u, err := register(c.nodes[i%3], "u_")
		if err != nil {
			return err
		}
		if err := fg.join(u); err != nil {
			return fmt.Errorf("join of %s on %s: %w", u.name, u.node.name, err)
		}
		users[i] = u
		if (i+1)%1000 == 0 {
			fmt.Printf("presence: %d users registered and joined (%v)\n", i+1, time.Since(setup).Round(time.Second))
		}
		return nil
	}); err != nil {
		return err
	}
	// Every node's ID for every user (remote users have IDs of the node that shows them).
	ids := map[*node]map[string]*user{} // node → its ID of the user → user
	byName := map[string]*user{}
	for _, u := range users {
		byName[u.name+"@"+u.node.name] = u
	}
	if err := waitFor(120*time.Second, func() string {
		for _, nd := range c.nodes {
			m, err := memberIDs(fg, nd, byName)
			if err != nil {
				return err.Error()
			}
			ids[nd] = m
			if len(m) < len(users) {
				return fmt.Sprintf("%s lists %d of %d users as members", nd.name, len(m), len(users))
			}
		}
		return ""
	}); err != nil {
		return err
	}
	fmt.Printf("presence: %d users on 3 nodes are members everywhere (%v)\n", len(users), time.Since(setup).Round(time.Second))

	// Observers, one per node, the only sessions with the GUILD_PRESENCES intent.
	type sample struct {
		local bool
		d     time.Duration
	}
	var mu sync.Mutex
	type want struct {
		status string
		at     time.Time
		local  bool
	}
	pending := map[*node]map[*user]want{}
	var samples []sample
	online := map[*node]map[*user]bool{}
	for _, nd := range c.nodes {
		pending[nd] = map[*user]want{}
		online[nd] = map[*user]bool{}
	}
	observe := func(nd *node) func(t string, at time.Time, frame []byte) {
		return func(t string, at time.Time, frame []byte) {
			var ps []presenceOut
			switch t {
			case "PRESENCE_UPDATE":
				var f struct{ D presenceOut }
				_ = json.Unmarshal(frame, &f)
				ps = []presenceOut{f.D}
			case "PRESENCE_UPDATE_BULK":
				var f struct {
					D struct{ Presences []presenceOut }
				}
				_ = json.Unmarshal(frame, &f)
				ps = f.D.Presences
			default:
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, p := range ps {
				u := ids[nd][p.User.ID]
				if u == nil {
					continue
				}
				online[nd][u] = p.Status != "offline"
				if w, ok := pending[nd][u]; ok && w.status == p.Status {
					samples = append(samples, sample{w.local, at.Sub(w.at)})
					delete(pending[nd], u)
				}
			}
		}
	}
	var sessions []*session
	defer func() {
		for _, s := range sessions {
			s.close()
		}
	}()
	for _, nd := range c.nodes {
		obs, err := register(nd, "obs_")
		if err != nil {
			return err
		}
		if err := fg.join(obs); err != nil {
			return err
		}
		s, err := connect(obs, intentGuilds|intentGuildPresences, observe(nd))
		if err != nil {
			return err
		}
		sessions = append(sessions, s)
	}
	release, err := measuring(o.lock)
	if err != nil {
		return err
	}
	defer release()
	// Everyone online: one session each, without the presence intent.
	connectStart := time.Now()
	userSess := make([]*session, len(users))
	err = parallel(len(users), 32, func(i int) error {
		s, err := connect(users[i], intentGuilds, nil)
		userSess[i] = s
		return err
	})
	for _, s := range userSess {
		if s != nil {
			sessions = append(sessions, s)
		}
	}
	if err != nil {
		return err
	}
	var online0 time.Duration
	err = waitFor(120*time.Second, func() string {
		mu.Lock()
		defer mu.Unlock()
		for _, nd := range c.nodes {
			n := 0
			for _, on := range online[nd] {
				if on {
					n++
				}
			}
			if n < len(users) {
				return fmt.Sprintf("%s's observer sees %d of %d users online", nd.name, n, len(users))
			}
		}
		return ""
	})
	online0 = time.Since(connectStart)
	if err != nil {
		return err
	}
	fmt.Printf("presence: %d sessions opened; every observer saw all users online %v after the first connected\n", len(users), online0.Round(time.Millisecond))

	// Idle: everyone online, nothing changes.
	idle := 20 * time.Second
	b0 := c.p2pBytes()
	time.Sleep(idle)
	b1 := c.p2pBytes()

	// Changes.
	statuses := []string{"idle", "dnd", "online"}
	current := map[*user]int{} // index into statuses of the next status
	total := int(o.presenceDuration.Seconds() * float64(o.presenceRate))
	interval := time.Second / time.Duration(o.presenceRate)
	sent := 0
	start := time.Now()
	for i := range total {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		// A user with no change in flight.
		var k int
		var u *user
		mu.Lock()
		for try := 0; try < 100; try++ {
			k = rand.IntN(len(users))
			busy := false
			for _, nd := range c.nodes {
				if _, ok := pending[nd][users[k]]; ok {
					busy = true
				}
			}
			if !busy {
				u = users[k]
				break
			}
		}
		if u == nil {
			mu.Unlock()
			continue
		}
		st := statuses[current[u]]
		current[u] = (current[u] + 1) % len(statuses)
		now := time.Now()
		for _, nd := range c.nodes {
			pending[nd][u] = want{status: st, at: now, local: nd == u.node}
		}
		mu.Unlock()
		if err := userSess[k].sendPresence(st); err != nil {
			return err
		}
		sent++
	}
	sendTime := time.Since(start)
	b2 := c.p2pBytes()
	_ = waitFor(30*time.Second, func() string {
		mu.Lock()
		defer mu.Unlock()
		for _, nd := range c.nodes {
			if n := len(pending[nd]); n > 0 {
				return fmt.Sprintf("%d changes not seen on %s", n, nd.name)
			}
		}
		return ""
	})
	mu.Lock()
	var remote, local []time.Duration
	for _, s := range samples {
		if s.local {
			local = append(local, s.d)
		} else {
			remote = append(remote, s.d)
		}
	}
	missing := 0
	for _, nd := range c.nodes {
		missing += len(pending[nd])
	}
	mu.Unlock()
	sortDurations(remote)
	sortDurations(local)
	fmt.Printf("presence: %d status changes at %d/s among %d users: on the other nodes %d seen, p50 %s, p99 %s, max %s; on the user's own node p50 %s, p99 %s; %d never seen\n",
		sent, o.presenceRate, len(users), len(remote), ms(percentile(remote, 50)), ms(percentile(remote, 99)), ms(percentile(remote, 100)),
		ms(percentile(local, 50)), ms(percentile(local, 99)), missing)
	var parts []string
	for _, nd := range c.nodes {
		parts = append(parts, fmt.Sprintf("%s %.0f B/s idle, %.0f B/s changing", nd.name,
			float64(b1[nd]-b0[nd])/idle.Seconds(), float64(b2[nd]-b1[nd])/sendTime.Seconds()))
	}
	fmt.Printf("presence: libp2p traffic per node (both directions, all links): %s\n", strings.Join(parts, "; "))
	return nil
}

// presenceOut is the part of a presence the scenario reads.
type presenceOut struct {
	User struct {
		ID string `json:"id"`
	} `json:"user"`
	Status string `json:"status"`
}

// memberIDs lists the guild's members on nd and maps nd's ID of each user of byName
// (keyed name@home-node) to the user.
func memberIDs(fg *fedGuild, nd *node, byName map[string]*user) (map[string]*user, error) {
	out := map[string]*user{}
	after := "0"
	reader := &user{node: nd, token: ""}
	for _, u := range byName {
		if u.node == nd {
			reader = u
			break
		}
	}
	for {
		var page []struct {
			User struct {
				ID       string `json:"id"`
				Username string `json:"username"`
			} `json:"user"`
		}
		if err := reader.call("GET", "/guilds/"+fg.guilds[nd]+"/members?limit=1000&after="+after, nil, &page); err != nil {
			return nil, err
		}
		for _, m := range page {
			name := m.User.Username
			if !strings.Contains(name, "@") {
				name += "@" + nd.name
			}
			if u := byName[name]; u != nil {
				out[m.User.ID] = u
			}
			after = m.User.ID
		}
		if len(page) < 1000 {
			return out, nil
		}
	}
}
