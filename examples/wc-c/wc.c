/* wc: counts the lines, words and bytes of its stdin, or of the files named as arguments
 * (reachable only through a folder lent with --dir). A plain C program for WASI, built with
 * clang and wasi-libc: Continuum adapts the preview-1 module it compiles to into a component. */
#include <ctype.h>
#include <stdio.h>

static int count(FILE *in, const char *name) {
    long lines = 0, words = 0, bytes = 0;
    int c, in_word = 0;
    while ((c = fgetc(in)) != EOF) {
        bytes++;
        if (c == '\n') lines++;
        if (isspace(c)) {
            in_word = 0;
        } else if (!in_word) {
            in_word = 1;
            words++;
        }
    }
    printf("%ld %ld %ld%s%s\n", lines, words, bytes, name ? " " : "", name ? name : "");
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) return count(stdin, NULL);
    int status = 0;
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "r");
        if (!f) {
            fprintf(stderr, "wc: %s: cannot open\n", argv[i]);
            status = 1;
            continue;
        }
        count(f, argv[i]);
        fclose(f);
    }
    return status;
}
