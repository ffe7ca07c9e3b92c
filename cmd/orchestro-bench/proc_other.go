//go:build !linux

package main

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// errNoProc is returned where the tool needs Linux's /proc.
var errNoProc = errors.New("needs Linux /proc")

func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }

// signalGroup can only end the process itself here; its children, if any,
// are left to it.
func signalGroup(pid int, _ syscall.Signal) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}

func processCPU(int) (time.Duration, error) { return 0, errNoProc }
func peakRSS(int) (int64, error)            { return 0, errNoProc }
func kernelRelease() string                 { return "" }
func loadAverage() string                   { return "" }
