// Package bench holds certfleet's performance measurements: Go benchmarks
// of the API front (api_bench_test.go, BenchmarkAuth) and, in its
// subdirectories, commands that drive a real `certfleet serve` and print a
// table (bench/jobs: the deployment engine).
//
// It is not a test suite: nothing here asserts a timing. docs/benchmarks.md
// gives the commands and the numbers last measured.
package bench
