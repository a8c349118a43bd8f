package harness

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestCountInDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	// A sparse file with data after a hole of 64 MiB.
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
	f.Close()
	// A needle across the border of the first two chunks (1 MiB and the longest needle).
	big := bytes.Repeat([]byte("x"), 3<<20)
	copy(big[1<<20+len("straddle-needle")-5:], "straddle-needle")
	if err := os.WriteFile(filepath.Join(dir, "big"), big, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "plain"), []byte("xx plain-needle xx plain-needle"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		needles []string
		want    []int
	}{
		{[]string{"head-needle", "tail-needle", "straddle-needle", "plain-needle"}, []int{1, 1, 1, 2}},
		{[]string{"absent-needle", "needle-head"}, []int{0, 0}},
		{[]string{"-needle"}, []int{5}},
	} {
		var nd [][]byte
		for _, s := range c.needles {
			nd = append(nd, []byte(s))
		}
		got, err := CountInDir(dir, nd)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("CountInDir(%q) = %v, %v; want %v", c.needles, got, err, c.want)
		}
	}
}
