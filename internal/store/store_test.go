package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/docora/docora/internal/secrets"
)

func newBox(t testing.TB, b byte) *secrets.Box {
	t.Helper()
	box, err := secrets.NewBox(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return box
}

func openStore(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.UseKey(context.Background(), newBox(t, 1)); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMigrationsAreIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "docora.db")
	s1 := openStore(t, path)
	v1, err := s1.SchemaVersion(context.Background())
	if err != nil || v1 < 1 {
		t.Fatalf("version %d, %v", v1, err)
	}
	s2 := openStore(t, path)
	if v2, _ := s2.SchemaVersion(context.Background()); v2 != v1 {
		t.Fatalf("reopen changed version %d -> %d", v1, v2)
	}
}

func TestWrongKeyIsRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "docora.db")
	s := openStore(t, path)
	if has, _ := s.HasKey(ctx); !has {
		t.Fatal("key check not recorded")
	}
	s2, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := s2.UseKey(ctx, newBox(t, 2)); !errors.Is(err, secrets.ErrWrongKey) {
		t.Fatalf("UseKey with another key: %v", err)
	}
}

func testApp(id string) *App {
	return &App{ID: id, Name: "Docs " + id, Email: "ops@example.com", BaseURL: "https://example.com/hooks",
		ClientAuthKey: []byte("client-auth-key-" + id), TokenHash: "hash-" + id}
}

func TestAppsCRUD(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, filepath.Join(t.TempDir(), "docora.db"))
	a := testApp("app_1")
	if err := s.CreateApp(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateApp(ctx, testApp("app_1")); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate id: %v", err)
	}
	got, err := s.GetApp(ctx, "app_1")
	if err != nil || string(got.ClientAuthKey) != "client-auth-key-app_1" || got.CreatedAt.IsZero() {
		t.Fatalf("GetApp = %+v, %v", got, err)
	}
	if _, err := s.AppByTokenHash(ctx, "hash-app_1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppByTokenHash(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown hash: %v", err)
	}
	if _, err := s.GetApp(ctx, "app_x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown app: %v", err)
	}
	got.Name = "Renamed"
	if err := s.UpdateApp(ctx, &got); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAppTokenHash(ctx, "app_1", "hash-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppByTokenHash(ctx, "hash-app_1"); !errors.Is(err, ErrNotFound) {
		t.Fatal("old token hash still works")
	}
	apps, err := s.ListApps(ctx)
	if err != nil || len(apps) != 1 || apps[0].Name != "Renamed" {
		t.Fatalf("ListApps = %+v, %v", apps, err)
	}
}

func register(t testing.TB, s *Store, appID, url, token string) LinkView {
	t.Helper()
	v, _, err := s.RegisterLink(context.Background(), Registration{
		Repo:  Repository{ID: "repo_" + url, URL: url, URLKey: url, CloneURL: url + ".git", Owner: "o", Name: "n", Branch: "main"},
		AppID: appID, GitToken: token, Include: []string{"docs/**"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestLinksSharedRepositoryAndCleanup(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, filepath.Join(t.TempDir(), "docora.db"))
	for _, id := range []string{"app_1", "app_2"} {
		if err := s.CreateApp(ctx, testApp(id)); err != nil {
			t.Fatal(err)
		}
	}
	v1 := register(t, s, "app_1", "https://h/o/n", "tok-1")
	v2 := register(t, s, "app_2", "https://h/o/n", "")
	if v1.Repo.ID != v2.Repo.ID {
		t.Fatalf("one repository expected, got %s and %s", v1.Repo.ID, v2.Repo.ID)
	}
	if v1.GitToken != "tok-1" || v2.GitToken != "" || len(v1.Include) != 1 {
		t.Fatalf("link fields: %+v / %+v", v1.Link, v2.Link)
	}
	if err := s.ConfirmDelivered(ctx, "app_1", v1.Repo.ID, "a.txt", "sha-a"); err != nil {
		t.Fatal(err)
	}
	// Re-registering resets the link and clears its delivery state, even for a sole watcher.
	v1b, existed, err := s.RegisterLink(ctx, Registration{Repo: v1.Repo, AppID: "app_1", GitToken: "tok-2"})
	if err != nil || !existed || v1b.Generation != v1.Generation+1 || v1b.GitToken != "tok-2" {
		t.Fatalf("re-register: %+v existed=%v err=%v", v1b.Link, existed, err)
	}
	if st, _ := s.DeliveryState(ctx, "app_1", v1.Repo.ID); len(st) != 0 {
		t.Fatalf("delivery state kept after re-register: %v", st)
	}
	gone, err := s.DeleteLink(ctx, "app_2", v1.Repo.ID)
	if err != nil || gone {
		t.Fatalf("DeleteLink app_2: gone=%v err=%v (app_1 still watches)", gone, err)
	}
	if _, err := s.DeleteLink(ctx, "app_2", v1.Repo.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	orphans, err := s.DeleteApp(ctx, "app_1")
	if err != nil || len(orphans) != 1 || orphans[0] != v1.Repo.ID {
		t.Fatalf("DeleteApp orphans=%v err=%v", orphans, err)
	}
	if _, err := s.GetRepository(ctx, v1.Repo.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unwatched repository kept: %v", err)
	}
	if err := s.MarkInFlight(ctx, "app_1", v1.Repo.ID, "a", "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("MarkInFlight on a removed link: %v", err)
	}
}

func TestDeliveryStateAndBlobs(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, filepath.Join(t.TempDir(), "docora.db"))
	if err := s.CreateApp(ctx, testApp("app_1")); err != nil {
		t.Fatal(err)
	}
	v := register(t, s, "app_1", "https://h/o/n", "")
	r := v.Repo.ID
	steps := []func() error{
		func() error { return s.MarkInFlight(ctx, "app_1", r, "a", "s1") },
		func() error { return s.ConfirmDelivered(ctx, "app_1", r, "a", "s1") },
		func() error { return s.MarkInFlight(ctx, "app_1", r, "a", "s2") },
		func() error { return s.MarkInFlight(ctx, "app_1", r, "b", "t1") },
	}
	for _, f := range steps {
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
	st, err := s.DeliveryState(ctx, "app_1", r)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]StateEntry{"a": {SHA: "s1", InFlightSHA: "s2"}, "b": {InFlightSHA: "t1"}}
	if fmt.Sprint(st) != fmt.Sprint(want) {
		t.Fatalf("state = %v, want %v", st, want)
	}
	if err := s.ConfirmDeleted(ctx, "app_1", r, "a"); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.DeliveryState(ctx, "app_1", r); len(st) != 1 {
		t.Fatalf("after delete: %v", st)
	}

	ids := make([]string, 1200)
	blobs := map[string]Blob{}
	for i := range ids {
		ids[i] = fmt.Sprintf("%040d", i)
		if i%2 == 0 {
			blobs[ids[i]] = Blob{SHA256: fmt.Sprint("sha", i), Size: int64(i), Binary: i%4 == 0}
		}
	}
	if err := s.PutBlobs(ctx, blobs); err != nil {
		t.Fatal(err)
	}
	got, err := s.Blobs(ctx, ids)
	if err != nil || len(got) != len(blobs) || got[ids[4]] != blobs[ids[4]] {
		t.Fatalf("Blobs: %d entries, %v", len(got), err)
	}
}

// Two pools on one file behave like two processes: concurrent writes must all succeed.
func TestConcurrentWritersOnOneFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "docora.db")
	a, b := openStore(t, path), openStore(t, path)
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 100 {
		for j, s := range []*Store{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- s.CreateApp(ctx, testApp(fmt.Sprintf("app_%d_%d", j, i)))
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	apps, _ := a.ListApps(ctx)
	if len(apps) != 200 {
		t.Fatalf("%d apps, want 200", len(apps))
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("database mode %v, want 0600", fi.Mode().Perm())
	}
}
