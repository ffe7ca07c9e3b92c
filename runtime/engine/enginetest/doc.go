// Package enginetest helps tests of code that drives the Docker engine: Fake
// is an in-memory engine.Engine for unit tests, and NeedEngine and
// UniqueLabels give integration tests the real engine, skipped without one
// (failed when CI is set), with cleanup by label.
//
// It is for tests only, like net/http/httptest: import it from _test.go
// files, never from production code, so no binary links the fake. It may
// import package engine, the Docker SDK and the standard library (testing
// included).
package enginetest
