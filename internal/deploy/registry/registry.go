// Package registry is the catalog of every product certfleet can deploy to:
// a plain list, one line per product. Adding a target means adding its
// package and one line here.
//
// Only internal/server (and tests that need real products) import this
// package: it pulls in every target's client libraries, which the engine and
// the API must not depend on — they take a deploy.Catalog.
package registry

import (
	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/aliyun"
	"github.com/certfleet/certfleet/internal/deploy/aliyun/alb"
	"github.com/certfleet/certfleet/internal/deploy/aliyun/cdn"
	"github.com/certfleet/certfleet/internal/deploy/aliyun/dcdn"
	"github.com/certfleet/certfleet/internal/deploy/aliyun/nlb"
	"github.com/certfleet/certfleet/internal/deploy/aliyun/oss"
	"github.com/certfleet/certfleet/internal/deploy/aliyun/slb"
	"github.com/certfleet/certfleet/internal/deploy/aliyun/waf"
	"github.com/certfleet/certfleet/internal/deploy/aws"
	"github.com/certfleet/certfleet/internal/deploy/kubernetes"
	"github.com/certfleet/certfleet/internal/deploy/local"
	"github.com/certfleet/certfleet/internal/deploy/sshfile"
	"github.com/certfleet/certfleet/internal/deploy/sshhaproxy"
	"github.com/certfleet/certfleet/internal/deploy/sshnginx"
	"github.com/certfleet/certfleet/internal/deploy/sshx"
	"github.com/certfleet/certfleet/internal/deploy/tencent"
	"github.com/certfleet/certfleet/internal/deploy/webhook"
)

// Options are the server's settings, per family of products.
type Options struct {
	Local   local.Options
	SSH     sshx.Options
	Webhook webhook.Options
	// Aliyun is shared by every Alibaba Cloud product (one rate limit and
	// upload cache per credential).
	Aliyun     aliyun.Options
	AWS        aws.Options
	Tencent    tencent.Options
	Kubernetes kubernetes.Options
}

// New builds the catalog of every product.
func New(o Options) *deploy.List {
	ali := aliyun.NewHub(o.Aliyun)
	awsp, tc := aws.New(o.AWS), tencent.New(o.Tencent) // each shares its uploads across its products
	return deploy.NewList(
		alb.New(ali),
		cdn.New(ali),
		dcdn.New(ali),
		nlb.New(ali),
		oss.New(ali),
		slb.New(ali),
		waf.New(ali),
		kubernetes.NewIngress(o.Kubernetes),
		kubernetes.NewSecret(o.Kubernetes),
		local.New(o.Local),
		sshfile.New(o.SSH),
		sshhaproxy.New(o.SSH),
		sshnginx.New(o.SSH),
		webhook.New(o.Webhook),
		awsp.ACM, awsp.CloudFront, awsp.ELB,
		tc.CDN, tc.CLB, tc.TEO,
	)
}
