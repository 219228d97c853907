package bolt

import (
	"errors"
	"os"
	"syscall"
)

// oDirect is the open flag that takes the log around the page cache.
const oDirect = syscall.O_DIRECT

// fdatasync makes f's written data durable, without its timestamps.
func fdatasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }

// clearDirect turns O_DIRECT off on an open file.
func clearDirect(f *os.File) error {
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	err = raw.Control(func(fd uintptr) {
		flags, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
		if e != 0 {
			ferr = e
			return
		}
		if _, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_SETFL, flags&^syscall.O_DIRECT); e != 0 {
			ferr = e
		}
	})
	return errors.Join(err, ferr)
}
