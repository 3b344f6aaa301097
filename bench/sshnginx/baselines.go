package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// writeFiles writes c as every site's <site>.pem and <site>.key under dir
// and returns their names.
func writeFiles(dir string, sites []string, c cert) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var names []string
	for _, site := range sites {
		if err := os.WriteFile(filepath.Join(dir, site+".pem"), []byte(c.certPEM), 0o644); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, site+".key"), []byte(c.keyPEM), 0o600); err != nil {
			return nil, err
		}
		names = append(names, site+".pem", site+".key")
	}
	return names, nil
}

// runFloor is what an expert does by hand: every file in one tar stream over
// one ssh session that untars, tests and reloads. Only the pipeline is timed
// (the files are already on the operator's disk). It writes in place, with
// no previous copy kept and no rollback: a floor, not a fair competitor.
func runFloor(ctx context.Context, h *sshHost, n *nginxHost, dir string, c cert) (time.Duration, error) {
	names, err := writeFiles(dir, n.sites, c)
	if err != nil {
		return 0, err
	}
	remote := fmt.Sprintf("tar x -C %s && %s && %s", n.tlsDir, n.testCommand(), n.reloadCommand())
	tarCmd := exec.CommandContext(ctx, "tar", append([]string{"c", "-C", dir}, names...)...)
	sshCmd := exec.CommandContext(ctx, "/usr/bin/ssh", append(h.sshArgs(), "root@127.0.0.1", remote)...)
	var tarErr, sshOut bytes.Buffer
	tarCmd.Stderr = &tarErr
	sshCmd.Stdout, sshCmd.Stderr = &sshOut, &sshOut

	start := time.Now()
	pipe, err := tarCmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	sshCmd.Stdin = pipe
	if err := tarCmd.Start(); err != nil {
		return 0, err
	}
	if err := sshCmd.Run(); err != nil {
		tarCmd.Wait()
		return 0, fmt.Errorf("ssh %q: %w\n%s", remote, err, sshOut.String())
	}
	if err := tarCmd.Wait(); err != nil {
		return 0, fmt.Errorf("tar: %w\n%s", err, tarErr.String())
	}
	return time.Since(start), nil
}

// runFloors is the floor on several hosts: one tar | ssh per host (each
// with its own nginx and share of the sites), all at once.
func runFloors(ctx context.Context, hs []*sshHost, ns []*nginxHost, dir string, c cert) (time.Duration, error) {
	if len(hs) == 1 {
		return runFloor(ctx, hs[0], ns[0], dir, c)
	}
	start := time.Now()
	errs := make([]error, len(hs))
	var wg sync.WaitGroup
	for i, h := range hs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = runFloor(ctx, h, ns[i], filepath.Join(dir, strconv.Itoa(i)), c)
		}()
	}
	wg.Wait()
	return time.Since(start), errors.Join(errs...)
}

// ensureAnsible installs Debian's ansible package when ansible-playbook is
// missing.
func ensureAnsible(ctx context.Context) error {
	if _, err := exec.LookPath("ansible-playbook"); err == nil {
		return nil
	}
	fmt.Fprintln(os.Stderr, "ansible-playbook is missing (install it with: apt-get install -y ansible); installing it now, -skip-ansible skips this")
	for _, args := range [][]string{{"update"}, {"install", "-y", "ansible"}} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("apt-get %s: %w (or run with -skip-ansible)", strings.Join(args, " "), err)
		}
	}
	return nil
}

// runAnsible writes an inventory and a playbook as an operator would (copy
// with loop, then nginx -t, then a reload handler) and times
// ansible-playbook. Ansible's settings are as shipped; only where it keeps
// its local temporary files and ssh control sockets is moved into dir.
func runAnsible(ctx context.Context, h *sshHost, n *nginxHost, dir string, c cert) (time.Duration, string, error) {
	src := filepath.Join(dir, "files")
	if _, err := writeFiles(src, n.sites, c); err != nil {
		return 0, "", err
	}
	cp := filepath.Join(dir, "cp")
	if err := os.MkdirAll(cp, 0o700); err != nil {
		return 0, "", err
	}
	// Ansible's ssh ControlPersist master outlives the run by 60 s; stop it.
	cleanups.add(func() {
		socks, _ := filepath.Glob(filepath.Join(cp, "*"))
		for _, s := range socks {
			exec.Command("/usr/bin/ssh", "-F", "/dev/null", "-o", "ControlPath="+s, "-O", "exit", "127.0.0.1").Run()
		}
	})
	inv := fmt.Sprintf("[web]\n127.0.0.1 ansible_connection=ssh ansible_port=%d ansible_user=root ansible_ssh_private_key_file=%s ansible_ssh_common_args='-o UserKnownHostsFile=%s -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes'\n",
		h.port, h.keyFile, h.knownHosts)
	vhosts, _ := json.Marshal(n.sites)
	play := fmt.Sprintf(`- name: deploy the new certificate to every vhost
  hosts: web
  vars:
    src: %s
    tls: %s
    vhosts: %s
  tasks:
    - name: certificates
      ansible.builtin.copy:
        src: "{{ src }}/{{ item }}.pem"
        dest: "{{ tls }}/{{ item }}.pem"
        mode: "0644"
      loop: "{{ vhosts }}"
      notify: reload nginx
    - name: keys
      ansible.builtin.copy:
        src: "{{ src }}/{{ item }}.key"
        dest: "{{ tls }}/{{ item }}.key"
        mode: "0600"
      loop: "{{ vhosts }}"
      notify: reload nginx
    - name: test the configuration
      ansible.builtin.command: %s
      changed_when: false
  handlers:
    - name: reload nginx
      ansible.builtin.command: %s
`, src, n.tlsDir, vhosts, n.testCommand(), n.reloadCommand())
	invPath, playPath := filepath.Join(dir, "inventory.ini"), filepath.Join(dir, "play.yml")
	if err := os.WriteFile(invPath, []byte(inv), 0o600); err != nil {
		return 0, "", err
	}
	if err := os.WriteFile(playPath, []byte(play), 0o600); err != nil {
		return 0, "", err
	}
	env := append(os.Environ(), "ANSIBLE_SSH_CONTROL_PATH_DIR="+cp, "ANSIBLE_LOCAL_TEMP="+filepath.Join(dir, "tmp"), "ANSIBLE_NOCOLOR=1")
	vout, _ := exec.CommandContext(ctx, "ansible-playbook", "--version").Output()
	version, _, _ := strings.Cut(string(vout), "\n")

	cmd := exec.CommandContext(ctx, "ansible-playbook", "-i", invPath, playPath)
	cmd.Dir, cmd.Env = dir, env
	logPath := filepath.Join(dir, "ansible.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return 0, "", err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	start := time.Now()
	err = cmd.Run()
	d := time.Since(start)
	if err != nil {
		out, _ := os.ReadFile(logPath)
		return 0, "", fmt.Errorf("ansible-playbook: %w\n%s", err, out)
	}
	return d, strings.TrimSpace(version), nil
}
