package media

import (
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/hearth-chat/hearth/conformance/harness"
)

// MEDIA-002: "A node MUST store identical bytes once however often they are
// uploaded." MEDIA-019: "A file name MUST never be used to form a filesystem path."
// Both show in the node's data dir: the same 256 KiB uploaded four times, by two
// users, in three messages, must occur there once, and no path may contain the
// (unique) file name it was uploaded under. A data dir where the bytes do not show
// at all (compressed or encrypted storage) cannot be judged.
func storedOnce(t *T) {
	u, g := setup(t)
	other := t.NewUser()
	t.Join(g, other)
	name := harness.RandName()
	data := randomFile(256 << 10).data
	upload(t, u, g.Text, file{name + ".bin", "application/octet-stream", data})
	upload(t, u, g.Text, file{"../" + name + ".txt", "text/plain", data}, file{name, "application/octet-stream", data})
	upload(t, other, g.Text, file{name + ".dat", "application/octet-stream", data})
	counts, err := harness.CountInDir(t.Node.DataDir(), [][]byte{data[:4096], data[len(data)-4096:]})
	if err != nil {
		t.Fatalf("reading the data dir: %v", err)
	}
	if counts[0] == 0 && counts[1] == 0 {
		t.Skipf("the uploaded bytes do not show in the data dir (compressed or encrypted storage): how often they are stored cannot be judged")
	}
	if counts[0] != 1 || counts[1] != 1 {
		t.Errorf("the same 256 KiB uploaded 4 times: its first and last 4 KiB occur %d and %d times in the data dir, expected once", counts[0], counts[1])
	}
	err = filepath.WalkDir(t.Node.DataDir(), func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), name) {
			t.Errorf("the data dir has a path made from the uploaded file name %q: %s", name, path)
		}
		return err
	})
	if err != nil {
		t.Fatalf("walking the data dir: %v", err)
	}
}

// MEDIA-063: "A node SHOULD also delete temporary files and unindexed blob files
// older than the grace period (what a crash leaves behind)." The node runs with a
// 4 s grace and a collection every 250 ms (gcArgs). An upload stalls after 2 MiB;
// once its bytes show in the data dir the node is killed with -9 and restarted, and
// the bytes must then disappear.
func crashLeftovers(t *T) {
	u, g := setup(t)
	head := randomFile(2 << 20).data
	needle := [][]byte{head[len(head)-4096:]}
	pr, pw := io.Pipe()
	mw := newStreamingForm(pw)
	go func() { // ends when the node dies (the request fails) or the test closes the pipe
		w, err := mw.file("stalled.bin")
		if err == nil {
			_, err = w.Write(head)
		}
		if err != nil {
			pw.CloseWithError(err)
		}
	}()
	req, err := http.NewRequestWithContext(t.Ctx, "POST", u.Node.BaseURL+harness.API+"/channels/"+g.Text+"/messages", pr)
	if err != nil {
		t.Fatalf("%v", err)
	}
	req.Header.Set("Content-Type", mw.contentType())
	req.Header.Set("Authorization", u.Token)
	done := make(chan struct{})
	go func() { // the upload never completes: it ends with the node or the test
		defer close(done)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	t.Cleanup(func() { pr.CloseWithError(io.ErrClosedPipe); <-done })
	stored := func(want bool) func() error {
		return func() error {
			counts, err := harness.CountInDir(t.Node.DataDir(), needle)
			if err != nil {
				return err
			}
			if (counts[0] > 0) != want {
				return fmt.Errorf("the stalled upload's last bytes occur %d times in the data dir", counts[0])
			}
			return nil
		}
	}
	if err := harness.Eventually(t.Ctx, t.Timeout(), stored(true)); err != nil {
		t.Skipf("the first 2 MiB of a stalled upload never showed in the data dir (%v): what a crash leaves cannot be observed", err)
	}
	if err := t.Node.Kill(); err != nil {
		t.Fatalf("kill -9: %v", err)
	}
	if err := t.Node.Restart(t.Ctx, 60*time.Second); err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Eventually("the file the crashed upload left is deleted after the grace", stored(false))
}
