package sqlite

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"waygate/audit"
)

// crashChildEnv names the database the child of TestSIGKILL writes to.
const crashChildEnv = "WAYGATE_AUDIT_CRASH_CHILD"

// TestSIGKILLChild is the child process of TestSIGKILL: it records events
// forever and prints "ack N" once events 0..N-1 are acknowledged (Flush
// returned). It does nothing in a normal test run. Rounds of 200 events
// with base/200%3 == 1 are recorded while the database is locked, so the
// kill after "ack 4000" hits while acknowledged events are in the spool.
func TestSIGKILLChild(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		t.Skip("child of TestSIGKILL only")
	}
	// A tiny queue and wait bound: Record spools too, not only the writer.
	s, err := Open(Options{Path: path, QueueSize: 16, BatchSize: 64, WaitBound: time.Millisecond,
		Logger: quietLogger(), busyTimeout: 10 * time.Millisecond})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	// Every third round another connection holds the write lock while
	// events come in: they go to the spool and Flush replays them, so the
	// kill may hit a spool write or a replay too.
	locker, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	lockConn, err := locker.Conn(context.Background())
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	out := bufio.NewWriter(os.Stdout)
	for base := 0; ; base += 200 {
		locked := base/200%3 == 1
		if locked {
			if _, err := lockConn.ExecContext(context.Background(), `BEGIN EXCLUSIVE`); err != nil {
				fmt.Println("lock:", err)
				os.Exit(1)
			}
		}
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for j := range 50 {
					i := base + w*50 + j
					e := testEvent(i)
					e.RequestID = fmt.Sprintf("c-%d", i)
					s.Record(e)
				}
			})
		}
		wg.Wait()
		// While locked, Flush fails but the events are in the fsynced
		// spool: acknowledged all the same.
		if err := s.Flush(); err != nil && !locked {
			fmt.Println("flush:", err)
			os.Exit(1)
		}
		fmt.Fprintf(out, "ack %d\n", base+200)
		out.Flush()
		if locked {
			if _, err := lockConn.ExecContext(context.Background(), `COMMIT`); err != nil {
				fmt.Println("unlock:", err)
				os.Exit(1)
			}
		}
	}
}

func TestSIGKILL(t *testing.T) {
	if os.Getenv(crashChildEnv) != "" {
		t.Skip("in the child")
	}
	path := filepath.Join(t.TempDir(), "audit.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestSIGKILLChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := 0
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if n, ok := strings.CutPrefix(line, "ack "); ok {
			acked, _ = strconv.Atoi(n)
			if acked >= 4000 {
				break
			}
			continue
		}
		t.Logf("child: %s", line)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Read what the child printed before it died: later acks count too.
	for sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "ack "); ok {
			acked, _ = strconv.Atoi(n)
		}
	}
	cmd.Wait()
	if acked < 4000 {
		t.Fatalf("child acknowledged only %d events", acked)
	}
	want := make([]string, acked)
	for i := range want {
		want[i] = fmt.Sprintf("c-%d", i)
	}

	// Before Open: the database is sound and every acknowledged event is
	// in it or in a spool file.
	raw := rawDB(t, path)
	var ic string
	if err := raw.QueryRow(`PRAGMA integrity_check`).Scan(&ic); err != nil || ic != "ok" {
		t.Fatalf("integrity_check = %q, %v", ic, err)
	}
	have := map[string]int{}
	rows, err := raw.Query(`SELECT request_id FROM events`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		rows.Scan(&id)
		have[id]++
	}
	rows.Close()
	inDB := len(have)
	files, _ := replayFiles(path + ".spool")
	files = append(files, path+".spool")
	spooled := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			var e audit.Event
			if json.Unmarshal([]byte(line), &e) == nil {
				have[e.RequestID]++
				spooled++
			}
		}
	}
	for _, id := range want {
		if have[id] == 0 {
			t.Fatalf("acknowledged event %s lost (%d in db, %d spooled)", id, inDB, spooled)
		}
	}
	raw.Close()
	t.Logf("acked %d; after the kill %d in the database, %d in spool files", acked, inDB, spooled)

	// Open replays the spool: every acknowledged event is in the
	// database, once, and the chain verifies.
	s := openTest(t, path, nil)
	rows, err = s.DB().Query(`SELECT request_id, count(*) FROM events GROUP BY request_id HAVING count(*) > 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var n int
		rows.Scan(&id, &n)
		t.Errorf("event %s stored %d times", id, n)
	}
	rows.Close()
	got := map[string]bool{}
	for _, e := range readEvents(t, s.DB()) {
		got[e.RequestID] = true
	}
	for _, id := range want {
		if !got[id] {
			t.Fatalf("acknowledged event %s missing after replay", id)
		}
	}
	var total int64
	s.DB().QueryRow(`SELECT count(*) FROM events`).Scan(&total)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := Verify(context.Background(), path)
	if err != nil || !res.OK || res.Events != total {
		t.Fatalf("Verify = %+v, %v (%d rows)", res, err, total)
	}
}
