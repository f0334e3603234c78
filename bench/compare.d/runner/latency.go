// Latency against the real control plane (kube-apiserver + etcd started by
// scripts/local-cluster --real): objects created at a steady rate, each timed
// from just before its create request to its event's arrival at the sink.
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

type realPlane struct {
	cmd    *exec.Cmd
	server string
	kc     string
	client *http.Client
}

func kubeconfigField(text, key string) string {
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, key+":") {
			return strings.TrimSpace(strings.TrimPrefix(l, key+":"))
		}
	}
	return ""
}

func startRealPlane(localCluster string) *realPlane {
	kc := filepath.Join(*workDir, "real-kubeconfig")
	cmd := exec.Command(localCluster, "--real", "--kubeconfig", kc)
	out, _ := cmd.StdoutPipe()
	errf, _ := os.Create(filepath.Join(*workDir, "local-cluster.log"))
	cmd.Stderr = errf
	if err := startPinned(cmd, *serverCPU); err != nil {
		die("start %s: %v", localCluster, err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "ready") {
				ready <- true
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			die("local-cluster --real exited; see %s:\n%s", errf.Name(), tail(errf.Name(), 10))
		}
	case <-time.After(180 * time.Second):
		die("local-cluster --real not ready in 180 s; see %s", errf.Name())
	}
	b, _ := os.ReadFile(kc)
	text := string(b)
	dec := func(k string) []byte {
		v, err := base64.StdEncoding.DecodeString(kubeconfigField(text, k))
		if err != nil {
			die("kubeconfig %s: %s: %v", kc, k, err)
		}
		return v
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(dec("certificate-authority-data"))
	cert, err := tls.X509KeyPair(dec("client-certificate-data"), dec("client-key-data"))
	if err != nil {
		die("kubeconfig %s: client certificate: %v", kc, err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}},
		MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}
	return &realPlane{cmd, kubeconfigField(text, "server"), kc, &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

func (p *realPlane) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

func (p *realPlane) do(method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, p.server+path, rd)
	req.Header.Set("Content-Type", "application/json")
	r, err := p.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, b, nil
}

func (p *realPlane) must(method, path string, body any) {
	code, b, err := p.do(method, path, body)
	if err != nil || code >= 300 && code != 409 {
		die("%s %s: %d %v %s", method, path, code, err, b)
	}
}

func (p *realPlane) setup() {
	p.must("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": resource + "." + group},
		"spec": map[string]any{"group": group, "scope": "Namespaced",
			"names": map[string]any{"plural": resource, "singular": "widget", "kind": kind, "listKind": kind + "List"},
			"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object",
					"x-kubernetes-preserve-unknown-fields": true}}}}}})
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, b, _ := p.do("GET", "/apis/"+group+"/v1", nil)
		if code == 200 && strings.Contains(string(b), `"`+resource+`"`) {
			return
		}
		if time.Now().After(deadline) {
			die("the %s CRD was not served within 60 s", resource)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

const (
	group    = "bench.example.com"
	resource = "widgets"
	kind     = "Widget"
)

func widget(ns, name string) map[string]any {
	return map[string]any{"apiVersion": group + "/v1", "kind": kind,
		"metadata": map[string]any{"name": name, "namespace": ns, "labels": map[string]string{"app": "bench"}},
		"spec":     map[string]any{"replicas": 3, "data": strings.Repeat("x", 1200)}}
}

func pct(v []float64, p float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	i := int(p/100*float64(len(s)-1) + 0.5)
	return s[i]
}

var latSeq int

// latencyRun: one adapter against the real control plane, in a namespace of
// its own, with objects created at rate/s for dur.
func latencyRun(p *realPlane, ad adapter, rate int, dur time.Duration) {
	latSeq++
	ns := fmt.Sprintf("lat%d", latSeq)
	p.must("POST", "/api/v1/namespaces", map[string]any{"apiVersion": "v1", "kind": "Namespace",
		"metadata": map[string]any{"name": ns}})
	sink := startServer("countsink", "-record")
	defer sink.stop()
	logPath := filepath.Join(*workDir, fmt.Sprintf("lat%02d-%s.log", latSeq, ad.name))
	lf, _ := os.Create(logPath)
	defer lf.Close()
	cmd := exec.Command(ad.bin, ad.args...)
	cmd.Env = env(sink.port, p.kc)
	for i, e := range cmd.Env {
		if strings.HasPrefix(e, "K_SOURCE_CONFIG=") {
			cmd.Env[i] = strings.Replace(e, `"namespaces":["bench"]`, `"namespaces":["`+ns+`"]`, 1)
		} else if strings.HasPrefix(e, "NAMESPACE=") {
			cmd.Env[i] = "NAMESPACE=" + ns
		}
	}
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := startPinned(cmd, *adapterCPU); err != nil {
		die("start %s: %v", ad.bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(40 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	base := "/apis/" + group + "/v1/namespaces/" + ns + "/" + resource
	arrivals := func() map[string]int64 {
		m := map[string]int64{}
		c := http.Client{Timeout: 10 * time.Second}
		r, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/_bench/arrivals", sink.port))
		if err == nil {
			_ = json.NewDecoder(r.Body).Decode(&m)
			r.Body.Close()
		}
		return m
	}
	// Watching once a probe object's event arrives (objects made before the
	// watch are in its initial state, for which neither adapter sends events).
	deadline := time.Now().Add(90 * time.Second)
	for k := 0; ; k++ {
		select {
		case err := <-exited:
			exited <- err
			die("%s exited during the latency run: %v; log %s:\n%s", ad.name, err, logPath, tail(logPath, 10))
		default:
		}
		if time.Now().After(deadline) {
			die("%s sent no event for probe objects within 90 s; log %s:\n%s", ad.name, logPath, tail(logPath, 10))
		}
		p.must("POST", base, widget(ns, fmt.Sprintf("probe-%d", k)))
		time.Sleep(300 * time.Millisecond)
		if len(arrivals()) > 0 {
			break
		}
	}
	total := int(float64(rate) * dur.Seconds())
	sent := make([]int64, total)
	var wg sync.WaitGroup
	next := make(chan int, total)
	for i := 0; i < total; i++ {
		next <- i
	}
	close(next)
	start := time.Now().Add(100 * time.Millisecond)
	var errs sync.Map
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
				sent[i] = time.Now().UnixNano()
				code, b, err := p.do("POST", base, widget(ns, fmt.Sprintf("w-%06d", i)))
				if err != nil || code != 201 {
					errs.Store(i, fmt.Sprintf("%d %v %.200s", code, err, b))
					sent[i] = 0
				}
			}
		}()
	}
	wg.Wait()
	achieved := float64(total) / time.Since(start).Seconds()
	failures := 0
	errs.Range(func(k, v any) bool {
		if failures == 0 {
			logf("a create failed: %v", v)
		}
		failures++
		return true
	})
	var got map[string]int64
	deadline = time.Now().Add(120 * time.Second)
	for {
		got = arrivals()
		n := 0
		for i := range sent {
			if _, ok := got[fmt.Sprintf("w-%06d", i)]; ok && sent[i] != 0 {
				n++
			}
		}
		if n >= total-failures || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	var lat []float64
	for i, t := range sent {
		if a, ok := got[fmt.Sprintf("w-%06d", i)]; ok && t != 0 {
			lat = append(lat, float64(a-t)/1e6)
		}
	}
	if len(lat) == 0 {
		die("%s: no event of the latency run arrived", ad.name)
	}
	missing := total - failures - len(lat)
	add(ad.name, "lat_p50", pct(lat, 50))
	add(ad.name, "lat_p99", pct(lat, 99))
	add(ad.name, "lat_rate", achieved)
	logf("%-7s latency   %d creates at %.0f/s (%d failed, %d events missing): p50 %.1f ms, p99 %.1f ms, max %.1f ms",
		ad.name, total, achieved, failures, missing, pct(lat, 50), pct(lat, 99), pct(lat, 100))
}
