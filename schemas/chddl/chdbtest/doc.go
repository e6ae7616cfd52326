// Package chdbtest checks the schema on the current ClickHouse engine, in-process
// through chdb (libchdb.so, ClickHouse 26.x). Its test needs the build tag chdb and
// CHDB_LIB_PATH: chdb-go loads the library when its package initialises and panics
// without it, so the test is run by schemas/chddl's TestCurrentEngine, which installs the
// library (deploy/local/chdb.sh) and runs this package in a child `go test`.
package chdbtest
