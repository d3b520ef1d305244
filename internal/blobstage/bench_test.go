package blobstage

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"

	"github.com/bmc-dev/bmc/internal/azurite"
)

// The benchmarks run against Azurite and put the Azure store beside a
// baseline: a plain sequential azblob loop, one UploadBuffer or DownloadFile
// per file, with no parallelism. bench/blob.sh runs them and prints the
// ratios.

// BenchmarkSmallFiles moves 1,000 files of 4 KiB.
func BenchmarkSmallFiles(b *testing.B) {
	const files, size = 1000, 4 << 10
	src := b.TempDir()
	names := make([]string, files)
	for i := range files {
		content := make([]byte, size)
		rand.Read(content)
		names[i] = fmt.Sprintf("d%02d/f%04d.dat", i%10, i)
		writeBenchFile(b, filepath.Join(src, filepath.FromSlash(names[i])), content)
	}
	benchTransfers(b, src, names, files*size)
}

// BenchmarkLargeFile moves one file of 1 GiB; BMC_BENCH_LARGE=1 enables it.
func BenchmarkLargeFile(b *testing.B) {
	if os.Getenv("BMC_BENCH_LARGE") != "1" {
		b.Skip("set BMC_BENCH_LARGE=1 to move a 1 GiB file")
	}
	const size = 1 << 30
	src := b.TempDir()
	writeLargeFile(b, filepath.Join(src, "large.bin"), size)
	benchTransfers(b, src, []string{"large.bin"}, size)
}

func benchTransfers(b *testing.B, src string, names []string, bytes int64) {
	cs := azurite.Start(b)
	// Azurite answers on loopback in about a millisecond; an account in a
	// region is further away. BMC_BENCH_RTT (a Go duration) adds that
	// round trip to every request of both contenders.
	var opts service.ClientOptions
	if v := os.Getenv("BMC_BENCH_RTT"); v != "" {
		rtt, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("BMC_BENCH_RTT: %v", err)
		}
		opts.PerRetryPolicies = []policy.Policy{delayPolicy(rtt)}
	}
	svc, err := service.NewClientFromConnectionString(cs, &opts)
	if err != nil {
		b.Fatal(err)
	}
	a := newAzure(svc, Options{})
	c := newContainer(b)
	cc := svc.NewContainerClient(c)
	if _, err := cc.Create(b.Context(), nil); err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		b.Fatal(err)
	}
	report := func(b *testing.B) {
		secs := b.Elapsed().Seconds()
		b.ReportMetric(float64(bytes)*float64(b.N)/1e6/secs, "MB/s")
		b.ReportMetric(float64(len(names))*float64(b.N)/secs, "files/s")
	}
	pattern := "**/*"

	b.Run("upload/bmc", func(b *testing.B) {
		for b.Loop() {
			if _, err := a.Upload(b.Context(), src, pattern, Location{c, "up-bmc/"}); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	b.Run("upload/baseline", func(b *testing.B) {
		for b.Loop() {
			for _, name := range names {
				data, err := os.ReadFile(filepath.Join(src, filepath.FromSlash(name)))
				if err != nil {
					b.Fatal(err)
				}
				bb := cc.NewBlockBlobClient("up-base/" + name)
				if _, err := bb.UploadBuffer(b.Context(), data, &blockblob.UploadBufferOptions{Concurrency: 1}); err != nil {
					b.Fatal(err)
				}
			}
		}
		report(b)
	})

	// Both downloads read the same blobs, put there once.
	if _, err := a.Upload(b.Context(), src, pattern, Location{c, "data/"}); err != nil {
		b.Fatal(err)
	}
	b.Run("download/bmc", func(b *testing.B) {
		for b.Loop() {
			dst := benchDir(b)
			if _, err := a.Download(b.Context(), Location{c, "data/"}, dst); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			os.RemoveAll(dst)
			b.StartTimer()
		}
		report(b)
	})
	b.Run("download/baseline", func(b *testing.B) {
		for b.Loop() {
			dst := benchDir(b)
			pager := cc.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: new("data/")})
			for pager.More() {
				page, err := pager.NextPage(b.Context())
				if err != nil {
					b.Fatal(err)
				}
				for _, item := range page.Segment.BlobItems {
					p := filepath.Join(dst, filepath.FromSlash((*item.Name)[len("data/"):]))
					if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
						b.Fatal(err)
					}
					f, err := os.Create(p)
					if err != nil {
						b.Fatal(err)
					}
					_, err = cc.NewBlobClient(*item.Name).DownloadFile(b.Context(), f, &blob.DownloadFileOptions{Concurrency: 1})
					f.Close()
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			os.RemoveAll(dst)
			b.StartTimer()
		}
		report(b)
	})
}

// delayPolicy holds every request for a fixed time before sending it.
type delayPolicy time.Duration

func (d delayPolicy) Do(req *policy.Request) (*http.Response, error) {
	select {
	case <-time.After(time.Duration(d)):
	case <-req.Raw().Context().Done():
		return nil, req.Raw().Context().Err()
	}
	return req.Next()
}

// benchDir is a fresh directory for one iteration's download; iterations
// remove theirs, so a 1 GiB benchmark does not fill the disk.
func benchDir(b *testing.B) string {
	dst, err := os.MkdirTemp(b.TempDir(), "dl")
	if err != nil {
		b.Fatal(err)
	}
	return dst
}

func writeBenchFile(b *testing.B, p string, content []byte) {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(p, content, 0o644); err != nil {
		b.Fatal(err)
	}
}
