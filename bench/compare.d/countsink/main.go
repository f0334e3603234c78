// countsink: an HTTP CloudEvents sink for bench/compare that only counts. It
// reads each request's body, optionally waits -delay (a sink doing work; each
// request waits on its own, so concurrent requests overlap), and answers
// -status. It prints "port N" on stdout once listening. GET /_bench/stats
// returns the count and the times (Unix ns) of the first request and of the
// -n'th. With -record it also keeps the arrival time of each event by the
// last segment of its subject (the object's name), served by GET
// /_bench/arrivals, for latency runs.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var (
	count    atomic.Int64
	firstNs  atomic.Int64
	nthNs    atomic.Int64
	lastNs   atomic.Int64
	bytesIn  atomic.Int64
	mu       sync.Mutex
	arrivals = map[string]int64{}
)

// subject: the event's subject, from the binary-mode header or a
// structured-mode body.
func subject(r *http.Request, body []byte) string {
	if s := r.Header.Get("Ce-Subject"); s != "" {
		return s
	}
	var ev struct {
		Subject string `json:"subject"`
	}
	_ = json.Unmarshal(body, &ev)
	return ev.Subject
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	delay := flag.Duration("delay", 0, "time each request waits before its answer")
	status := flag.Int("status", 202, "HTTP status of every answer")
	n := flag.Int64("n", 0, "record the time the n'th request arrived")
	record := flag.Bool("record", false, "keep each event's arrival time by subject")
	flag.Parse()
	h := func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/_bench/stats" {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]int64{"count": count.Load(), "first_ns": firstNs.Load(),
				"nth_ns": nthNs.Load(), "last_ns": lastNs.Load(), "bytes": bytesIn.Load()})
			return
		}
		if r.Method == http.MethodGet && r.URL.Path == "/_bench/arrivals" {
			mu.Lock()
			defer mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(arrivals)
			return
		}
		var b int64
		if *record {
			body, _ := io.ReadAll(r.Body)
			b = int64(len(body))
			s := subject(r, body)
			s = s[strings.LastIndexByte(s, '/')+1:]
			now := time.Now().UnixNano()
			mu.Lock()
			if _, dup := arrivals[s]; !dup {
				arrivals[s] = now
			}
			mu.Unlock()
		} else {
			b, _ = io.Copy(io.Discard, r.Body)
		}
		if *delay > 0 {
			time.Sleep(*delay)
		}
		now := time.Now().UnixNano()
		bytesIn.Add(b)
		c := count.Add(1)
		if c == 1 {
			firstNs.Store(now)
		}
		if c == *n {
			nthNs.Store(now)
		}
		lastNs.Store(now)
		w.WriteHeader(*status)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("countsink: %v", err)
	}
	fmt.Printf("port %d\n", ln.Addr().(*net.TCPAddr).Port)
	os.Stdout.Sync()
	log.Fatal(http.Serve(ln, http.HandlerFunc(h)))
}
