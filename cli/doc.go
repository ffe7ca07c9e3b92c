// Package cli is orchestro's command line: cobra commands that parse and
// validate flags, call the runtime through the Backend interface, and render
// the results. It holds no business rule and imports no Docker package.
//
// Every command follows one shape: an options struct, a newXCmd(f, runF)
// constructor that only parses flags, and a runX(opts) that does the work.
// Data goes to stdout, progress and diagnostics to stderr; colour only on a
// terminal and never under NO_COLOR.
package cli
