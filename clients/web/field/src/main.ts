import { createApp } from 'vue'
import 'vant/es/style/base.css'
import '@shared/tokens.css'
import './theme.css'
import App from './App.vue'
import { router } from './router'
import { guardUnload } from './unload'
import { registerServiceWorker } from './updates'

createApp(App).use(router).mount('#app')
registerServiceWorker()
guardUnload(window)
