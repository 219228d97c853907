package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
)

// startPprof serves /debug/pprof/ on addr (LIFELINE_PPROF_ADDR), which
// must be a loopback address such as 127.0.0.1:6060: a listener of its
// own, never the public one, for profiling a node under load
// (docs/performance.md). Only serve calls it, so other commands and the
// load tool's child processes never try to bind it.
func startPprof(addr string, stderr io.Writer) {
	if addr == "" {
		return
	}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		fmt.Fprintf(stderr, "lifeline: LIFELINE_PPROF_ADDR=%q must be a loopback address; not serving pprof\n", addr)
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(stderr, "lifeline: pprof: %v\n", err)
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	go func() { _ = http.Serve(ln, mux) }()
}
