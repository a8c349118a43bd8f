package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hearth-chat/hearth/conformance/loadwire"
)

// usage is a snapshot of what the node and the generator have consumed, to report the cost
// of a scenario per message as well as its speed: on a shared machine wall-clock figures move
// with the load, CPU time per message much less.
type usage struct {
	at       time.Time
	nodeCPU  float64 // seconds, from the node's /metrics process_cpu_seconds_total (0 if absent)
	nodeSysW int64   // write system calls of the node (/proc/PID/io syscw; -1 if unknown)
	selfCPU  float64 // seconds of CPU used by this generator
}

func takeUsage(base string) usage {
	u := usage{at: time.Now(), nodeSysW: -1, nodeCPU: loadwire.NodeCPU(base), selfCPU: loadwire.SelfCPU()}
	if nodePID != 0 {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", nodePID)); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "syscw: "); ok {
					u.nodeSysW, _ = strconv.ParseInt(v, 10, 64)
				}
			}
		}
	}
	return u
}

// costLine describes what happened between u0 and u1 for msgs messages and deliveries
// frames delivered.
func costLine(u0, u1 usage, msgs, deliveries int64) string {
	wall := u1.at.Sub(u0.at).Seconds()
	var parts []string
	if u1.nodeCPU > 0 && msgs > 0 {
		cpu := u1.nodeCPU - u0.nodeCPU
		parts = append(parts, fmt.Sprintf("node CPU %.2f cores, %.0f µs/message", cpu/wall, cpu*1e6/float64(msgs)))
	}
	if u1.nodeSysW >= 0 && u0.nodeSysW >= 0 && deliveries > 0 {
		parts = append(parts, fmt.Sprintf("node write syscalls %.2f per delivery", float64(u1.nodeSysW-u0.nodeSysW)/float64(deliveries)))
	}
	parts = append(parts, fmt.Sprintf("generator CPU %.2f cores", (u1.selfCPU-u0.selfCPU)/wall))
	if u1.nodeCPU > 0 && msgs == 1 {
		// One fanout: the CPU node and generator spent on it, spread over two otherwise idle
		// cores, is a floor for its wall time on this machine whatever else runs.
		cpu := (u1.nodeCPU - u0.nodeCPU) + (u1.selfCPU - u0.selfCPU)
		parts = append(parts, fmt.Sprintf("CPU of node and generator %.0f ms, /2 cores = %.0f ms", cpu*1000, cpu*500))
	}
	return "  cost: " + strings.Join(parts, "; ")
}

// machineLine describes the machine's state: the load average, and how long fsync takes
// in dir (the node's durability floor: a message is answered after an fsync covers it).
func machineLine(dir string) string {
	load := "?"
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			load = strings.Join(f[:3], " ")
		}
	}
	line := "  machine: load average " + load
	f, err := os.CreateTemp(dir, "fsync-probe")
	if err != nil {
		return line
	}
	defer os.Remove(f.Name())
	defer f.Close()
	var d []time.Duration
	buf := make([]byte, 256)
	for range 200 {
		if _, err := f.Write(buf); err != nil {
			return line
		}
		t := time.Now()
		if err := f.Sync(); err != nil {
			return line
		}
		d = append(d, time.Since(t))
	}
	slices.Sort(d)
	return line + fmt.Sprintf("; fsync (200 × 256 B appends in %s) p50 %s, p99 %s", dir, ms(d[len(d)/2]), ms(d[len(d)*99/100]))
}
