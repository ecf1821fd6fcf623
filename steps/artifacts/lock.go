package artifacts

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Holder describes who holds a run directory's lock.
type Holder struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Since   time.Time `json:"since"`
	Command string    `json:"command,omitempty"`
}

func (h Holder) String() string {
	s := fmt.Sprintf("pid %d on %s since %s", h.PID, h.Host, h.Since.Format(time.RFC3339))
	if h.Command != "" {
		s += " (" + h.Command + ")"
	}
	return s
}

// ErrLocked: another process holds the run directory.
var ErrLocked = errors.New("run directory in use")

// LockError names the holder of a locked run directory.
type LockError struct {
	Dir    string
	Holder Holder
}

func (e *LockError) Error() string {
	return fmt.Sprintf("%s is in use by regmigrate %s: wait for that run to end (or stop it), or give another --out", e.Dir, e.Holder)
}

func (e *LockError) Unwrap() error { return ErrLocked }

// Lock takes the run directory's lock (an flock on name inside dir, which
// the kernel drops when the process ends, however it ends) and records
// the holder in it. unlock releases it.
func Lock(dir, name, command string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	p := filepath.Join(dir, name)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			le := &LockError{Dir: dir}
			if b, rerr := os.ReadFile(p); rerr == nil {
				_ = json.Unmarshal(b, &le.Holder)
			}
			return nil, le
		}
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	host, _ := os.Hostname()
	b, _ := json.Marshal(Holder{PID: os.Getpid(), Host: host, Since: time.Now().UTC(), Command: strings.TrimSpace(command)})
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt(b, 0)
	}
	return func() {
		_ = f.Truncate(0)
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
