// main.c — the amanuensis command line (placeholder replaced below).
int main(void) { return 0; }
