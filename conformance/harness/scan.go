package harness

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Linux lseek whences that skip the holes of sparse files (databases preallocate
// logs of gigabytes that hold a few kilobytes).
const (
	seekData = 3
	seekHole = 4
)

// CountInDir counts the occurrences of each of needles in the bytes of the regular
// files under dir (overlapping occurrences of one needle count once). Holes of
// sparse files are skipped where the file system tells them apart.
func CountInDir(dir string, needles [][]byte) (counts []int, err error) {
	counts = make([]int, len(needles))
	longest := 0
	for _, n := range needles {
		longest = max(longest, len(n))
	}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		return scanFile(f, needles, counts, longest)
	})
	return counts, err
}

// scanFile adds to counts the needles' occurrences in f's data extents, reading
// them in chunks that overlap by the longest needle; an occurrence is counted in
// the chunk where it ends.
func scanFile(f *os.File, needles [][]byte, counts []int, longest int) error {
	buf := make([]byte, 1<<20+longest)
	var off int64
	for {
		start, err := f.Seek(off, seekData)
		if errors.Is(err, syscall.ENXIO) {
			return nil // no data after off
		}
		end := int64(-1)
		if err == nil {
			end, err = f.Seek(start, seekHole)
		}
		if err != nil { // no SEEK_DATA here: read everything
			start, end = 0, -1
		}
		if _, err := f.Seek(start, io.SeekStart); err != nil {
			return err
		}
		keep := 0
		pos := start
		for end < 0 || pos < end {
			want := len(buf) - keep
			if end >= 0 {
				want = int(min(int64(want), end-pos))
			}
			n, err := io.ReadFull(f, buf[keep:keep+want])
			chunk := buf[:keep+n]
			for i, nd := range needles {
				for at := 0; ; {
					j := bytes.Index(chunk[at:], nd)
					if j < 0 {
						break
					}
					if at+j+len(nd) > keep {
						counts[i]++
					}
					at += j + len(nd)
				}
			}
			pos += int64(n)
			keep = min(longest, len(chunk))
			copy(buf, chunk[len(chunk)-keep:])
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return nil
			}
			if err != nil {
				return err
			}
		}
		off = end
	}
}
