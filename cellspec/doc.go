// Package cellspec loads, interpolates, defaults and validates cell files,
// project files and compose files. It is pure: no Docker, no printing.
//
// Every problem found is reported at once, each with the file, line and
// column it came from and the field path it concerns.
package cellspec
