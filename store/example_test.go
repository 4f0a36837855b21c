package store_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/tokenmgr/tokenmgr/store"
)

func ExampleNewEncryptedFile() {
	dir, err := os.MkdirTemp("", "tokenmgr-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "credentials.enc")
	ctx := context.Background()

	s, err := store.NewEncryptedFile(path, []byte("a long passphrase from TOKENMGR_STORE_PASSPHRASE"))
	if err != nil {
		log.Fatal(err)
	}
	if err := s.Save(ctx, "github", []byte(`{"access_token":"gho_example"}`)); err != nil {
		log.Fatal(err)
	}

	// Another run of the program opens the same file with the same passphrase.
	s2, err := store.NewEncryptedFile(path, []byte("a long passphrase from TOKENMGR_STORE_PASSPHRASE"))
	if err != nil {
		log.Fatal(err)
	}
	rec, err := s2.Load(ctx, "github")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(rec))

	// A wrong passphrase is an error; the file is left as it was.
	_, err = store.NewEncryptedFile(path, []byte("wrong"))
	fmt.Println(errors.Is(err, store.ErrWrongKey))
	// Output:
	// {"access_token":"gho_example"}
	// true
}
