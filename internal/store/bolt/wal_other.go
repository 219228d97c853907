//go:build !linux

package bolt

import "os"

// Elsewhere than Linux (a developer's machine) the log goes through the
// page cache, and File.Sync stands in for fdatasync: on macOS it is
// F_FULLFSYNC, the call that reaches the disk.
const oDirect = 0

func fdatasync(f *os.File) error { return f.Sync() }

func clearDirect(*os.File) error { return nil }
