// Package reliability holds process-level tests of docora's delivery guarantees (SPEC §5):
// real `docora sync` processes killed with SIGKILL mid-delivery, two processes on one store,
// SIGINT/SIGTERM during --watch, and receivers that fail. The tests re-execute the test binary
// as docora; the long crash run is selected with DOCORA_CRASH_TRIALS (see crash_test.go).
package reliability
