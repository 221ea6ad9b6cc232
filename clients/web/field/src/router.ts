import { createRouter, createWebHistory } from 'vue-router'
import { session } from './workspace'

export const router = createRouter({
  history: createWebHistory('/field/'),
  routes: [
    { path: '/', name: 'home', component: () => import('./views/HomeView.vue') },
    { path: '/login', name: 'login', component: () => import('./views/LoginView.vue') },
    { path: '/inspections/:id', name: 'inspection', component: () => import('./views/InspectionView.vue'), props: true },
    { path: '/projects/:id', name: 'project', component: () => import('./views/ProjectView.vue'), props: true },
  ],
})

// No session at all: log in (an expired one keeps the screens; the bar asks to log in again).
router.beforeEach((to) => {
  if (to.name !== 'login' && !session.state.value) return { name: 'login' }
  return true
})
