#!/bin/sh
# One task of a scan on the `bioinformatics` image (examples/bioinformatics.yaml):
# simulate a reference genome and reads with ERROR_RATE substitutions per base,
# align the reads with BWA, count mapped reads with SAMtools, and summarise.
set -eu
work=$(mktemp -d)
cd "$work"
# The tools' messages go to a log, shown if a step fails.
trap 'status=$?; [ "$status" -eq 0 ] || { echo "failed (status $status):"; cat tools.log; } >&2' EXIT
: > tools.log

# A 20 kb random reference (same for every task) and 2000 reads of 100 bp from it.
awk 'BEGIN { srand(42); printf(">chrSim\n");
    for (i = 0; i < 20000; i++) { printf("%s", substr("ACGT", int(rand() * 4) + 1, 1));
        if (i % 60 == 59) printf("\n") } printf("\n") }' > ref.fa
awk -v rate="$ERROR_RATE" -v seed="$SEED" '
    BEGIN { for (i = 0; i < 100; i++) qual = qual "I" }
    /^>/ { next }
    { genome = genome $0 }
    END {
        srand(seed); n = length(genome)
        for (r = 0; r < 2000; r++) {
            read = substr(genome, int(rand() * (n - 100)) + 1, 100); out = ""
            for (i = 1; i <= 100; i++) {
                b = substr(read, i, 1)
                if (rand() < rate) b = substr("ACGT", int(rand() * 4) + 1, 1)
                out = out b
            }
            printf("@read%d\n%s\n+\n%s\n", r, out, qual)
        }
    }' ref.fa > reads.fq

seqtk comp reads.fq | awk '{ bases += $2 } END { print "simulated bases:", bases }' > summary.txt
bwa index ref.fa 2>> tools.log
bwa mem -t 1 ref.fa reads.fq 2>> tools.log > aln.sam
samtools sort -m 64M -o aln.bam aln.sam 2>> tools.log
samtools index aln.bam 2>> tools.log
mapped=$(samtools view -c -F 4 aln.bam)
total=$(samtools view -c aln.bam)
{
    echo "error rate: $ERROR_RATE"
    echo "reads mapped: $mapped of $total"
    echo "bwa: $(bwa 2>&1 | sed -n 's/^Version: //p')"
    echo "samtools: $(samtools --version | head -n 1)"
} >> summary.txt
cp summary.txt "$GRIDVM_OUTPUT/summary.txt"
cat summary.txt
