import { MemoryReconciledBlockStore } from '../../src/store/memory/MemoryReconciledBlockStore.js';
import { runReconciledBlockStoreContract } from './reconciledContract.js';

runReconciledBlockStoreContract('memory', async () => {
  const store = new MemoryReconciledBlockStore();
  return {
    store,
    async cleanup() {
      await store.close();
    },
  };
  // Nothing durable to reopen and no backend bytes to probe: those two cases are not defined for memory.
}, { reopen: false, holdsBytes: false });
