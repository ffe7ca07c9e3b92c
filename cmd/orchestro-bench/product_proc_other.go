//go:build !linux

package main

import "time"

func ownCPU(int) (time.Duration, error)   { return 0, errNoProc }
func parentPID(int) (int, error)          { return 0, errNoProc }
func processComm(int) string              { return "" }
func pidsByComm(string) []int             { return nil }
func dockerProxyPIDs(string, int) []int   { return nil }
func machineBusy() (time.Duration, error) { return 0, errNoProc }
