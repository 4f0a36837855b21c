//go:build unix

package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// openNonblock opens a FIFO without waiting for a writer; it changes
// nothing for a regular file.
const openNonblock = syscall.O_NONBLOCK

// checkFileMode refuses a store file other users may read or write.
func checkFileMode(name, path string, fi fs.FileInfo) error {
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("store: encrypted file %s: %w: mode %04o lets other users read or change it; run: chmod 600 %s",
			name, ErrUnsafePermissions, perm, path)
	}
	return nil
}

// checkDirs refuses a store whose directory, or a directory above it, other
// users may change: they could replace the file or the locks. Directories
// must belong to this user or root and not be group- or world-writable; a
// sticky directory (/tmp) is allowed above the store's own. Missing
// directories are skipped (the first Save creates them 0700).
func checkDirs(name, path string) error {
	uid := os.Geteuid()
	own := true // the first existing directory is the store's own
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return fmt.Errorf("store: encrypted file %s: %w", name, err)
		default:
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != uid && st.Uid != 0 {
				return fmt.Errorf("store: encrypted file %s: %w: directory %s belongs to another user (uid %d); move the store to a directory of yours",
					name, ErrUnsafePermissions, dir, st.Uid)
			}
			sticky := fi.Mode()&fs.ModeSticky != 0
			if fi.Mode().Perm()&0o022 != 0 && (own || !sticky) {
				mode := fi.Mode().Perm()
				if sticky {
					mode |= 0o1000
				}
				fix := "run: chmod go-w " + dir
				if st, ok := fi.Sys().(*syscall.Stat_t); sticky || ok && int(st.Uid) != uid {
					// A shared directory (/tmp, /var/tmp) must stay
					// writable by all; another user's is not ours to
					// change.
					fix = "keep the store in a directory of your own instead, such as the default path or one made with mkdir -m 700; do not change " + dir + ", other users need it"
				}
				return fmt.Errorf("store: encrypted file %s: %w: directory %s (mode %04o) is writable by other users; %s",
					name, ErrUnsafePermissions, dir, mode, fix)
			}
			own = false
		}
		if parent := filepath.Dir(dir); parent == dir {
			return nil
		}
	}
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
