// fakeapi: a minimal Kubernetes API server for bench/compare. It serves
// discovery for one namespaced resource (bench.example.com/v1 widgets), an
// empty LIST, and a WATCH that streams N pre-generated ADDED events of about
// -size bytes each as fast as the client reads them. Both ways an adapter
// starts are served: LIST then WATCH from the list's resourceVersion (ours),
// and a watch-list (sendInitialEvents=true: an initial-events-end BOOKMARK
// first, client-go's WatchListClient, which Knative v0.49.2 uses). Only the
// first watch streams the events; later watches (reconnects) stay open and
// silent until their timeoutSeconds, so nothing is sent twice.
//
// It prints "port N" on stdout once listening. GET /_bench/stats returns the
// times (Unix ns) of the first request, of the start and end of the event
// stream, and the requests seen, for the runner.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	group    = "bench.example.com"
	version  = "v1"
	resource = "widgets"
	kind     = "Widget"
)

var (
	firstReq    atomic.Int64
	streamStart atomic.Int64
	streamEnd   atomic.Int64
	watches     atomic.Int64
	mu          sync.Mutex
	seen        []string
	events      []byte // N events, one JSON line each
	chunkEnds   []int  // offsets where a write may end (event boundaries, ~64 KiB apart)
	lastRV      int
	namespace   string
)

func genEvents(n, size int) {
	pad := strings.Repeat("x", 64)
	for i := 0; i < n; i++ {
		rv := 2 + i
		head := fmt.Sprintf(`{"type":"ADDED","object":{"apiVersion":"%s/%s","kind":"%s","metadata":{"name":"w-%07d","namespace":"%s","uid":"6b1f0c2e-%04x-4d5e-9f00-%012x","resourceVersion":"%d","generation":1,"creationTimestamp":"2026-01-01T00:00:00Z","labels":{"app":"bench","tier":"load"},"annotations":{"bench.example.com/note":"generated"}},"spec":{"replicas":3,"color":"blue","data":"`,
			group, version, kind, i, namespace, i&0xffff, i, rv)
		tail := `"},"status":{"phase":"Ready"}}}` + "\n"
		fill := size - len(head) - len(tail)
		if fill < 0 {
			fill = 0
		}
		events = append(events, head...)
		for fill > 0 {
			k := min(fill, len(pad))
			events = append(events, pad[:k]...)
			fill -= k
		}
		events = append(events, tail...)
		if len(chunkEnds) == 0 && len(events) >= 64<<10 || len(chunkEnds) > 0 && len(events)-chunkEnds[len(chunkEnds)-1] >= 64<<10 {
			chunkEnds = append(chunkEnds, len(events))
		}
		lastRV = rv
	}
	if len(chunkEnds) == 0 || chunkEnds[len(chunkEnds)-1] != len(events) {
		chunkEnds = append(chunkEnds, len(events))
	}
	if n == 0 {
		chunkEnds = nil
		lastRV = 1
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func notFound(w http.ResponseWriter, r *http.Request) {
	log.Printf("fakeapi: 404 %s %s", r.Method, r.URL.RequestURI())
	writeJSON(w, 404, map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure",
		"reason": "NotFound", "code": 404, "message": "not found: " + r.URL.Path})
}

func resourceList() map[string]any {
	return map[string]any{"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group + "/" + version,
		"resources": []any{map[string]any{"name": resource, "singularName": "widget", "namespaced": true,
			"kind": kind, "verbs": []string{"get", "list", "watch"}}}}
}

func bookmark(rv int, initialEnd bool) []byte {
	md := map[string]any{"resourceVersion": strconv.Itoa(rv)}
	if initialEnd {
		md["annotations"] = map[string]string{"k8s.io/initial-events-end": "true"}
	}
	b, _ := json.Marshal(map[string]any{"type": "BOOKMARK", "object": map[string]any{
		"apiVersion": group + "/" + version, "kind": kind, "metadata": md}})
	return append(b, '\n')
}

func serveWatch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	first := watches.Add(1) == 1
	fl, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(200)
	if q.Get("sendInitialEvents") == "true" {
		// The initial state is empty: the events below come after the sync,
		// as changes, which is what both adapters turn into CloudEvents.
		_, _ = w.Write(bookmark(1, true))
	}
	if fl != nil {
		fl.Flush()
	}
	if first && len(events) > 0 {
		streamStart.Store(time.Now().UnixNano())
		off := 0
		for _, end := range chunkEnds {
			if _, err := w.Write(events[off:end]); err != nil {
				log.Printf("fakeapi: watch stream ended by the client after %d bytes: %v", off, err)
				return
			}
			off = end
		}
		if fl != nil {
			fl.Flush()
		}
		streamEnd.Store(time.Now().UnixNano())
	}
	timeout := 1800
	if t, err := strconv.Atoi(q.Get("timeoutSeconds")); err == nil && t > 0 {
		timeout = t
	}
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	deadline := time.After(time.Duration(timeout) * time.Second)
	for {
		select {
		case <-r.Context().Done():
			return
		case <-deadline:
			return
		case <-tick.C:
			if q.Get("allowWatchBookmarks") == "true" {
				_, _ = w.Write(bookmark(lastRV, false))
				if fl != nil {
					fl.Flush()
				}
			}
		}
	}
}

func handle(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/_bench/stats" {
		mu.Lock()
		s := append([]string(nil), seen...)
		mu.Unlock()
		writeJSON(w, 200, map[string]any{"first_request_ns": firstReq.Load(), "stream_start_ns": streamStart.Load(),
			"stream_end_ns": streamEnd.Load(), "watches": watches.Load(), "requests": s})
		return
	}
	firstReq.CompareAndSwap(0, time.Now().UnixNano())
	mu.Lock()
	if len(seen) < 50 {
		seen = append(seen, r.Method+" "+r.URL.RequestURI())
	}
	mu.Unlock()
	gv := "/apis/" + group + "/" + version
	p := r.URL.Path
	switch {
	case p == "/version":
		writeJSON(w, 200, map[string]string{"major": "1", "minor": "37", "gitVersion": "v1.37.2",
			"platform": "linux/amd64"})
	case p == "/api":
		writeJSON(w, 200, map[string]any{"kind": "APIVersions", "versions": []string{"v1"}})
	case p == "/api/v1":
		writeJSON(w, 200, map[string]any{"kind": "APIResourceList", "groupVersion": "v1", "resources": []any{}})
	case p == "/apis":
		v := map[string]string{"groupVersion": group + "/" + version, "version": version}
		writeJSON(w, 200, map[string]any{"kind": "APIGroupList", "apiVersion": "v1", "groups": []any{
			map[string]any{"name": group, "versions": []any{v}, "preferredVersion": v}}})
	case p == "/apis/"+group:
		v := map[string]string{"groupVersion": group + "/" + version, "version": version}
		writeJSON(w, 200, map[string]any{"kind": "APIGroup", "apiVersion": "v1", "name": group,
			"versions": []any{v}, "preferredVersion": v})
	case p == gv:
		writeJSON(w, 200, resourceList())
	case p == gv+"/namespaces/"+namespace+"/"+resource || p == gv+"/"+resource:
		if r.Method != http.MethodGet {
			notFound(w, r)
			return
		}
		if wq := r.URL.Query().Get("watch"); wq == "true" || wq == "1" {
			serveWatch(w, r)
			return
		}
		writeJSON(w, 200, map[string]any{"apiVersion": group + "/" + version, "kind": kind + "List",
			"metadata": map[string]string{"resourceVersion": "1"}, "items": []any{}})
	default:
		notFound(w, r)
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	n := flag.Int("n", 10000, "ADDED events streamed on the first watch")
	size := flag.Int("size", 1536, "bytes per event line")
	flag.StringVar(&namespace, "namespace", "bench", "namespace of the objects")
	flag.Parse()
	genEvents(*n, *size)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("fakeapi: %v", err)
	}
	fmt.Printf("port %d\n", ln.Addr().(*net.TCPAddr).Port)
	os.Stdout.Sync()
	log.Fatal(http.Serve(ln, http.HandlerFunc(handle)))
}
