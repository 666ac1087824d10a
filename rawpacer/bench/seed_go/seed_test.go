// A Go port of the seed's benchmark (see /work/shared/seed/harness-facts.md), so that
// `rawpacer compare --with-go` measures the seed side by side with rawpacer's writers.
//
// Environment (all optional):
//
//	RAWPACER_GO_IP         readers' IPv4 address (default 127.0.0.1, as in the seed)
//	RAWPACER_GO_WRITER_IP  the writer's bind address (default: RAWPACER_GO_IP)
//	RAWPACER_GO_READERS    number of readers (default 100, the seed's readersCount)
//	RAWPACER_GO_PORT_BASE  readers take ports just above this (default 5000)
//	RAWPACER_GO_READER_NS  a netns file (/run/netns/NAME) the readers' sockets are made in
package seedgo

import (
	"crypto/rand"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	msgSize  = 1500
	testPort = 40101
)

var (
	readersCount = envInt("RAWPACER_GO_READERS", 100)
	portBase     = envInt("RAWPACER_GO_PORT_BASE", 5000)
	hostIP       = envIP("RAWPACER_GO_IP", "127.0.0.1")
	writerIP     = envIP("RAWPACER_GO_WRITER_IP", net.IP(hostIP[:]).String())
)

func envInt(key string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(key)); err == nil && v > 0 {
		return v
	}
	return def
}

func envIP(key, def string) [4]byte {
	v := os.Getenv(key)
	if v == "" {
		v = def
	}
	var out [4]byte
	copy(out[:], net.ParseIP(v).To4())
	return out
}

// getTestMsg is the seed's message: a fresh buffer of crypto-random bytes, once per reader per op.
func getTestMsg() []byte {
	buf := make([]byte, msgSize)
	if _, err := rand.Read(buf); err != nil {
		panic(err)
	}
	return buf
}

var setnsCall = map[string]uintptr{"amd64": 308, "arm64": 268, "386": 346}

// inNamespace runs fn on a locked OS thread switched into the netns file at path (if any).
// Sockets keep the namespace they were made in, so the readers can live beside the writer's.
func inNamespace(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	home, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return err
	}
	defer home.Close()
	target, err := os.Open(path)
	if err != nil {
		return err
	}
	defer target.Close()
	setns := func(fd uintptr) error {
		if _, _, e := syscall.RawSyscall(setnsCall[runtime.GOARCH], fd, syscall.CLONE_NEWNET, 0); e != 0 {
			return e
		}
		return nil
	}
	if err := setns(target.Fd()); err != nil {
		return err
	}
	defer setns(home.Fd())
	return fn()
}

// testInit starts the seed's readers: one blocking UDP socket and goroutine each, all pushing
// into one buffered channel; ports come from a counter just above portBase, skipping busy ones.
func testInit(count int) ([]int, chan []byte, chan struct{}, error) {
	var fds, ports []int
	port := portBase
	err := inNamespace(os.Getenv("RAWPACER_GO_READER_NS"), func() error {
		for len(fds) < count {
			port++
			if port > 65535 {
				return syscall.EADDRINUSE
			}
			fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM, syscall.IPPROTO_UDP)
			if err != nil {
				return err
			}
			syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
			if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: port, Addr: hostIP}); err != nil {
				syscall.Close(fd)
				continue
			}
			fds = append(fds, fd)
			ports = append(ports, port)
		}
		return nil
	})
	if err != nil {
		return nil, nil, nil, err
	}
	readChan := make(chan []byte, count)
	closeChan := make(chan struct{})
	for _, fd := range fds {
		go func(fd int) {
			buf := make([]byte, msgSize)
			for {
				n, _, err := syscall.Recvfrom(fd, buf, 0)
				if err != nil || n == 0 {
					return
				}
				select {
				case readChan <- buf[:n]:
				case <-closeChan:
					return
				}
			}
		}(fd)
	}
	go func() {
		<-closeChan
		for _, fd := range fds {
			syscall.Shutdown(fd, syscall.SHUT_RDWR)
			syscall.Close(fd)
		}
	}()
	return ports, readChan, closeChan, nil
}

// waitForReaders counts readersCount datagrams, each within one second, as the seed does.
func waitForReaders(readChan chan []byte, b *testing.B) {
	for i := 0; i < readersCount; i++ {
		select {
		case <-readChan:
		case <-time.After(time.Second):
			b.Fatal("timeout, should not happen")
		}
	}
}

// BenchmarkRawUDP is the seed's baseline: net.ListenUDP, then WriteTo each reader in turn.
func BenchmarkRawUDP(b *testing.B) {
	b.StopTimer()
	ip := net.IP(hostIP[:])
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IP(writerIP[:]), Port: testPort})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	ports, readChan, closeChan, err := testInit(readersCount)
	if err != nil {
		b.Fatal(err)
	}
	defer close(closeChan)
	b.StartTimer()
	for i := 0; i < b.N; i++ {
		for _, port := range ports {
			if _, err := conn.WriteTo(getTestMsg(), &net.UDPAddr{IP: ip, Port: port}); err != nil {
				b.Fatal(err)
			}
		}
		waitForReaders(readChan, b)
	}
	b.StopTimer()
}

// BenchmarkSample is the seed's solution: one syscall socket, one goroutine per send.
func BenchmarkSample(b *testing.B) {
	b.StopTimer()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM, syscall.IPPROTO_UDP)
	if err != nil {
		b.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: testPort, Addr: writerIP}); err != nil {
		b.Fatal(err)
	}
	ports, readChan, closeChan, err := testInit(readersCount)
	if err != nil {
		b.Fatal(err)
	}
	defer close(closeChan)
	writer := func() {
		var wg sync.WaitGroup
		wg.Add(len(ports))
		for i := range ports {
			go func(i int) {
				defer wg.Done()
				buf := getTestMsg()
				if err := syscall.Sendto(fd, buf, 0, &syscall.SockaddrInet4{Port: ports[i], Addr: hostIP}); err != nil {
					b.Error(err)
				}
			}(i)
		}
		wg.Wait()
		waitForReaders(readChan, b)
	}
	b.StartTimer()
	for i := 0; i < b.N; i++ {
		writer()
	}
	b.StopTimer()
}
