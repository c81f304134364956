/** File formats and crash-safe writes. */
export {
  writeFileAtomic,
  writeFileAtomicSync,
  tempPathFor,
  isAtomicTempFile,
  type AtomicData,
  type AtomicDataAsync,
} from './atomic.js';
export {
  parseSafetensors,
  parseSafetensorsHeader,
  serializeSafetensors,
  safetensorsChunks,
  loadSafetensors,
  loadSafetensorsSync,
  saveSafetensors,
  saveSafetensorsSync,
  SUPPORTED_DTYPES,
  type SafetensorsDType,
  type SafetensorsEntry,
  type SafetensorsFile,
  type SafetensorsHeader,
} from './safetensors.js';
