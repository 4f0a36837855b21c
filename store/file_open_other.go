//go:build !unix

package store

import "io/fs"

// openNonblock is unix's O_NONBLOCK; elsewhere opening does not block on
// the kinds of file that make it block there.
const openNonblock = 0

// checkFileMode and checkDirs check nothing here: Windows protects files
// with ACLs, which the mode bits do not show (a store's directory under
// %AppData% is the user's own).
func checkFileMode(name, path string, fi fs.FileInfo) error { return nil }

func checkDirs(name, path string) error { return nil }

// syncDir is a no-op: Windows (and the other non-unix systems) cannot open
// a directory for fsync, and MoveFileEx, which os.Rename uses on Windows,
// is durable once the file itself was synced.
func syncDir(string) error { return nil }
