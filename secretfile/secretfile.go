// Package secretfile reads a small file that holds a secret (a
// passphrase, a client secret, a web identity token) by one rule for the
// root package's _FILE variables and awscreds' web identity token file:
// it must be a regular file, it is opened without waiting (a named pipe
// would block until a writer came, past any deadline), and it is read up
// to a bound. Errors never hold the file's content.
package secretfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// ErrNotRegular is matched (errors.Is) by the error for a path that is a
// directory, a named pipe, a socket or a device.
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is matched by the error for a file larger than the bound.
var ErrTooLarge = errors.New("file too large")

// Read returns the content of the regular file at path, of at most max
// bytes. Its error is an *fs.PathError (a file error, never taken for a
// network one); a missing file's matches fs.ErrNotExist.
func Read(path string, max int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|openNonblock, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("%w (%s)", ErrNotRegular, Kind(fi.Mode()))}
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("%w: larger than %s", ErrTooLarge, size(max))}
	}
	return b, nil
}

// Kind names what a file that is not regular is, for errors.
func Kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "mode " + m.String()
}

func size(n int64) string {
	if n >= 1<<10 && n%(1<<10) == 0 {
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
