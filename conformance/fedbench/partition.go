package main

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// partition cuts node2 off from node0 and node1 for o.partition while o.perSide messages
// are written on each side, heals, and measures the time until every node holds every
// message; then it compares the histories the nodes serve.
func partition(o options) error {
	c, err := startCluster(o, 3, false)
	if err != nil {
		return err
	}
	defer c.stop()
	fg, err := newFedGuild(c.nodes[0])
	if err != nil {
		return err
	}
	// Live events are limited to 10/s per author [FED-018]: enough authors for the rate.
	rate := float64(o.perSide) / o.partition.Seconds()
	perNode := max(int(rate/5)+1, 2)
	authors := map[*node][]*user{}
	got := map[*node]*arrivals{}
	var sessions []*session
	defer func() {
		for _, s := range sessions {
			s.close()
		}
	}()
	for _, nd := range c.nodes {
		us, err := members(fg, nd, perNode+1, "p_")
		if err != nil {
			return err
		}
		authors[nd] = us[1:]
		got[nd] = newArrivals()
		s, err := listen(us[0], got[nd])
		if err != nil {
			return err
		}
		sessions = append(sessions, s)
	}
	// Every node must see every other before the cut.
	for i, nd := range c.nodes {
		if _, err := authors[nd][0].send(fg.channels[nd], "hello-"+strconv.Itoa(i)); err != nil {
			return err
		}
	}
	if err := waitFor(60*time.Second, func() string {
		for _, nd := range c.nodes {
			if n := countPrefix(got[nd], "hello-"); n < len(c.nodes) {
				return fmt.Sprintf("%s has %d of %d hello messages", nd.name, n, len(c.nodes))
			}
		}
		return ""
	}); err != nil {
		return err
	}

	release, err := measuring(o.lock)
	if err != nil {
		return err
	}
	defer release()
	cutNode := c.nodes[2]
	if err := c.isolate(2, true); err != nil {
		return err
	}
	fmt.Printf("partition: %s cut off; writing %d messages on each side over %v\n", cutNode.name, o.perSide, o.partition)
	sides := [][]*node{{c.nodes[0], c.nodes[1]}, {cutNode}}
	var failed atomic.Int64
	done := make(chan error, len(sides))
	start := time.Now()
	for s, side := range sides {
		go func() {
			interval := time.Duration(float64(time.Second) / rate)
			err := parallel(o.perSide, 16, func(i int) error {
				if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
					time.Sleep(d)
				}
				nd := side[i%len(side)]
				us := authors[nd]
				if _, err := us[(i/len(side))%len(us)].send(fg.channels[nd], fmt.Sprintf("s%d-%d", s, i)); err != nil {
					failed.Add(1)
				}
				return nil
			})
			done <- err
		}()
	}
	for range sides {
		if err := <-done; err != nil {
			return err
		}
	}
	if d := time.Until(start.Add(o.partition)); d > 0 {
		time.Sleep(d)
	}
	// The cut must have held: nothing of one side on the other.
	if n := countPrefix(got[c.nodes[0]], "s1-"); n > 0 {
		return fmt.Errorf("the partition leaked: %d messages of %s reached node0", n, cutNode.name)
	}
	if n := countPrefix(got[cutNode], "s0-"); n > 0 {
		return fmt.Errorf("the partition leaked: %d messages of node0/node1 reached %s", n, cutNode.name)
	}
	heal := time.Now()
	if err := c.isolate(2, false); err != nil {
		return err
	}
	want := 2*o.perSide + len(c.nodes) - int(failed.Load())
	err = waitFor(5*time.Minute, func() string {
		for _, nd := range c.nodes {
			if n := got[nd].count(); n < want {
				return fmt.Sprintf("%s has %d of %d messages", nd.name, n, want)
			}
		}
		return ""
	})
	// Cross-partition arrivals: the cut node's messages on the others and theirs on it.
	var first, last time.Time
	for _, nd := range c.nodes {
		other := "s1-"
		if nd == cutNode {
			other = "s0-"
		}
		a := got[nd]
		a.mu.Lock()
		for content, at := range a.at {
			if !strings.HasPrefix(content, other) {
				continue
			}
			if first.IsZero() || at.Before(first) {
				first = at
			}
			if at.After(last) {
				last = at
			}
		}
		a.mu.Unlock()
	}
	if err != nil {
		for _, nd := range c.nodes {
			fmt.Printf("partition: %s logged: %s\n", nd.name, nd.logSummary())
			fmt.Printf("partition: %s's gateway client lacks %s\n", nd.name, missingByOrigin(got[nd], o.perSide))
		}
		// Does a restart (which replays the node's federation store) or more time help?
		for _, nd := range c.nodes {
			if err := nd.restart(o.logLevel); err != nil {
				return err
			}
		}
		_ = waitFor(90*time.Second, func() string { sets, _ := compareHistories(c, fg, authors); return sets })
		for _, nd := range c.nodes {
			h, err := authors[nd][0].history(fg.channels[nd])
			if err != nil {
				return err
			}
			a := newArrivals()
			for _, m := range h {
				a.record(m.Content, time.Time{})
			}
			fmt.Printf("partition: after restarting every node, %s's history lacks %s\n", nd.name, missingByOrigin(a, o.perSide))
		}
		return fmt.Errorf("no convergence: %w", err)
	}
	fmt.Printf("partition: healed; every node's gateway client had all %d messages %v after the heal (the first message across the partition arrived %v after the heal, the last %v after the first); %d REST failures\n",
		want, last.Sub(heal).Round(time.Millisecond), first.Sub(heal).Round(time.Millisecond), last.Sub(first).Round(time.Millisecond), failed.Load())
	// Then the histories, through GET /channels/{id}/messages.
	var sets, order string
	err = waitFor(60*time.Second, func() string {
		sets, order = compareHistories(c, fg, authors)
		return sets
	})
	if err != nil {
		return fmt.Errorf("histories differ: %s", sets)
	}
	fmt.Printf("partition: every node serves the same %d messages, each once (checked %v after the heal)\n", want, time.Since(heal).Round(time.Millisecond))
	if order != "" {
		fmt.Printf("partition: ORDER DIFFERS: %s\n", order)
	} else {
		fmt.Printf("partition: and in the same order on every node\n")
	}
	return nil
}

// compareHistories compares the histories the nodes serve: sets is "" when every node
// holds the same messages by the same authors, each once, and says what differs otherwise;
// order is "" when they are also in the same order.
func compareHistories(c *cluster, fg *fedGuild, authors map[*node][]*user) (sets, order string) {
	var ref []string
	var refNode *node
	for _, nd := range c.nodes {
		msgs, err := authors[nd][0].history(fg.channels[nd])
		if err != nil {
			return err.Error(), ""
		}
		seq := make([]string, 0, len(msgs))
		seen := map[string]bool{}
		for _, m := range msgs {
			if seen[m.Content] {
				return fmt.Sprintf("%s holds %q twice", nd.name, m.Content), ""
			}
			seen[m.Content] = true
			author := m.Author.Username
			if !strings.Contains(author, "@") {
				author += "@" + nd.name
			}
			seq = append(seq, author+" "+m.Content)
		}
		if ref == nil {
			ref, refNode = seq, nd
			continue
		}
		s, o := diff(refNode.name, ref, nd.name, seq)
		if s != "" {
			return s, ""
		}
		if order == "" {
			order = o
		}
	}
	return "", order
}

// diff describes how two histories differ: in their sets of messages, else in order.
func diff(an string, a []string, bn string, b []string) (sets, order string) {
	inA := map[string]int{}
	for i, s := range a {
		inA[s] = i
	}
	inB := map[string]bool{}
	var onlyB []string
	for _, s := range b {
		inB[s] = true
		if _, ok := inA[s]; !ok {
			onlyB = append(onlyB, s)
		}
	}
	var onlyA []string
	for _, s := range a {
		if !inB[s] {
			onlyA = append(onlyA, s)
		}
	}
	if len(onlyA) > 0 || len(onlyB) > 0 {
		ex := func(l []string) string {
			if len(l) == 0 {
				return "-"
			}
			return l[0]
		}
		return fmt.Sprintf("%s has %d messages %s lacks (e.g. %s), %s has %d that %s lacks (e.g. %s)", an, len(onlyA), bn, ex(onlyA), bn, len(onlyB), an, ex(onlyB)), ""
	}
	moved := 0
	firstAt := -1
	for i := range a {
		if a[i] != b[i] {
			moved++
			if firstAt < 0 {
				firstAt = i
			}
		}
	}
	if moved > 0 {
		return "", fmt.Sprintf("%s and %s hold the same %d messages but at %d positions a different one (first at %d: %q vs %q)", an, bn, len(a), moved, firstAt, a[firstAt], b[firstAt])
	}
	return "", ""
}

// missingByOrigin describes which of the partition's messages a lacks, by the node that
// wrote them.
func missingByOrigin(a *arrivals, perSide int) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	missing := map[string]int{}
	examples := map[string]string{}
	for s := range 2 {
		for i := range perSide {
			content := fmt.Sprintf("s%d-%d", s, i)
			if _, ok := a.at[content]; ok {
				continue
			}
			origin := "node2"
			if s == 0 {
				origin = fmt.Sprintf("node%d", i%2)
			}
			if missing[origin] == 0 {
				examples[origin] = content
			}
			missing[origin]++
		}
	}
	if len(missing) == 0 {
		return "nothing"
	}
	var parts []string
	for _, origin := range []string{"node0", "node1", "node2"} {
		if missing[origin] > 0 {
			parts = append(parts, fmt.Sprintf("%d messages of %s (e.g. %s)", missing[origin], origin, examples[origin]))
		}
	}
	return strings.Join(parts, ", ")
}
