package loadwire

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// NodeCPU returns the CPU seconds the node at base has used, from its /metrics
// (process_cpu_seconds_total); 0 if it does not say. The load tools report what a scenario
// cost as well as how fast it went: on a shared machine the speed moves with the load, the
// CPU per message much less.
func NodeCPU(base string) float64 {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "process_cpu_seconds_total "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// SelfCPU returns the CPU seconds this process has used.
func SelfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
