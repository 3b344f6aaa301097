package ramapi

// SystemPolicy is a policy that exists in every account (PolicyType System).
type SystemPolicy struct {
	Description string
	Document    string
}

// systemPolicies are the system policies by name. The read-only policy
// names GetUserCertificateDetail rather than Get*, so that it does not allow
// yundun-cert:GetUserCertificatePrivateKey (reading private keys).
var systemPolicies = map[string]SystemPolicy{
	"AliyunYundunCertFullAccess": {Description: "Full access to certificate deployment (yundun-cert)",
		Document: `{"Version":"1","Statement":[{"Effect":"Allow","Action":"yundun-cert:*","Resource":"*"}]}`},
	"AliyunYundunCertReadOnlyAccess": {Description: "Read-only access to certificate deployment (yundun-cert)",
		Document: `{"Version":"1","Statement":[{"Effect":"Allow","Action":["yundun-cert:Describe*","yundun-cert:List*","yundun-cert:GetUserCertificateDetail"],"Resource":"*"}]}`},
}

// systemPolicyNames in listing order.
var systemPolicyNames = []string{"AliyunYundunCertFullAccess", "AliyunYundunCertReadOnlyAccess"}

// SystemPolicies returns the system policies by name, a copy.
func SystemPolicies() map[string]SystemPolicy {
	m := make(map[string]SystemPolicy, len(systemPolicies))
	for name, p := range systemPolicies {
		m[name] = p
	}
	return m
}
