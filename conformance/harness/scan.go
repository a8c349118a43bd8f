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

// FindInDir reports which of needles occur in the bytes of any regular file under
// dir. Holes of sparse files are skipped where the file system tells them apart.
func FindInDir(dir string, needles [][]byte) (found []bool, err error) {
	found = make([]bool, len(needles))
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
		return scanFile(f, needles, found, longest)
	})
	return found, err
}

// scanFile marks in found the needles that occur in f's data extents, reading
// them in chunks that overlap by the longest needle.
func scanFile(f *os.File, needles [][]byte, found []bool, longest int) error {
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
				if !found[i] && bytes.Contains(chunk, nd) {
					found[i] = true
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
