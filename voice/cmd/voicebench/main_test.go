package main

import "testing"

func TestCPUCount(t *testing.T) {
	for list, want := range map[string]int{
		"1": 1, "0-3": 4, "0,2-3": 3, " 0 , 1 ": 2,
		"": 0, "x": 0, "3-1": 0, "1-": 0,
	} {
		if got := cpuCount(list); got != want {
			t.Errorf("cpuCount(%q) = %d, want %d", list, got, want)
		}
	}
}
