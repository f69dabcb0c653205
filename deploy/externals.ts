/**
 * What the bundle (deploy/build.ts) leaves in node_modules, loaded from there when first used:
 * native optional add-ons; etcd3, @platformatic/kafka and @platformatic/wasm-utils (the snappy/lz4
 * codecs of both Kafka clients), which read files relative to their own directory; a node whose
 * sink is not Kafka never parses the 1.7 MB of the latter. The image layout (deploy/layout.ts)
 * copies these packages and their dependencies, nothing else of node_modules.
 */
export const EXTERNAL_PACKAGES = ['etcd3', '@platformatic/kafka', '@platformatic/wasm-utils'] as const;

/** esbuild's `external`: the packages above, plus native add-ons some optional dependency may pull in. */
export const BUNDLE_EXTERNALS = ['cpu-features', '*.node', ...EXTERNAL_PACKAGES];
