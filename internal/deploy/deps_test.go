package deploy_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCatalogKeepsTargetsOut: the engine and the API see products only
// through deploy.Catalog, so they must not link any target's client
// libraries (SSH, SFTP, cloud SDKs, Kubernetes) nor the registry that does.
func TestCatalogKeepsTargetsOut(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "github.com/certfleet/certfleet/internal/api",
		"github.com/certfleet/certfleet/internal/engine").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{
		"golang.org/x/crypto/ssh", "github.com/pkg/sftp",
		"github.com/aliyun/", "github.com/alibabacloud-go/cdn", "github.com/aliyun/alibabacloud-oss-go-sdk",
		"k8s.io/", "github.com/aws/", "github.com/tencentcloud/",
		"github.com/certfleet/certfleet/internal/deploy/",
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if strings.HasPrefix(pkg, f) {
				t.Errorf("internal/api or internal/engine depends on %s (forbidden prefix %s): take deploy.Catalog instead", pkg, f)
			}
		}
	}
}
