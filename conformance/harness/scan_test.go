package harness

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestFindInDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	// A sparse file with data after a hole of 64 MiB and a needle across a chunk border.
	f, err := os.Create(filepath.Join(dir, "sub", "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("head-needle"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("tail-needle"), 64<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("straddle-needle"), 64<<20+1<<20-7); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.WriteFile(filepath.Join(dir, "plain"), []byte("xx plain-needle xx"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		needles []string
		want    []bool
	}{
		{[]string{"head-needle", "tail-needle", "straddle-needle", "plain-needle"}, []bool{true, true, true, true}},
		{[]string{"absent-needle", "needle-head"}, []bool{false, false}},
	} {
		var nd [][]byte
		for _, s := range c.needles {
			nd = append(nd, []byte(s))
		}
		got, err := FindInDir(dir, nd)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("FindInDir(%q) = %v, %v; want %v", c.needles, got, err, c.want)
		}
	}
}
